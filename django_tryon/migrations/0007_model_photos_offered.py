import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('django_tryon', '0006_provider_health'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='modelphoto',
            name='offered_to_shoppers',
            field=models.BooleanField(default=False, help_text='Shoppers with no photo of their own at hand may try garments on this photo. The picture of a garment on it is made once and shown to every shopper who picks the same pair.', verbose_name='offered to shoppers'),
        ),
        migrations.AlterField(
            model_name='tryonjob',
            name='source',
            field=models.CharField(choices=[('shopper', 'Shopper'), ('admin', 'Admin'), ('shared', "Shoppers' model photo")], default='shopper', max_length=10, verbose_name='source'),
        ),
        migrations.CreateModel(
            name='TryOnShare',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('session_key', models.CharField(blank=True, default='', max_length=40, verbose_name='session')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False, verbose_name='created at')),
                ('job', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='shares', to='django_tryon.tryonjob', verbose_name='try-on job')),
                ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='tryon_shares', to=settings.AUTH_USER_MODEL, verbose_name='user')),
            ],
            options={
                'verbose_name': 'shared try-on',
                'verbose_name_plural': 'shared try-ons',
                'indexes': [models.Index(fields=['session_key'], name='tryon_share_session_idx')],
                'constraints': [models.UniqueConstraint(condition=models.Q(('user__isnull', False)), fields=('job', 'user'), name='tryon_share_user_unique'), models.UniqueConstraint(condition=models.Q(('user__isnull', True)), fields=('job', 'session_key'), name='tryon_share_session_unique')],
            },
        ),
    ]
