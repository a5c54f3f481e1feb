"""``manage.py load_demo_data``: the example Oscar shop's sample catalogue."""

from django.core.management.base import BaseCommand

from ...demo_data import load_demo_data


class Command(BaseCommand):
    help = "Create the example Oscar shop's sample products and model photos (safe to repeat)."

    def handle(self, *args, **options):
        report = load_demo_data()
        if options["verbosity"] >= 1:
            self.stdout.write(str(report))
