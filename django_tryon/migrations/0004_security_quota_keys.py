from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("django_tryon", "0003_oscar_published"),
    ]

    operations = [
        migrations.AlterField(
            model_name="tryonjob",
            name="quota_key",
            field=models.CharField(blank=True, default="", editable=False, max_length=255),
        ),
        migrations.AddIndex(
            model_name="dailyusage",
            index=models.Index(fields=["day", "key"], name="tryon_usage_day_idx"),
        ),
    ]
