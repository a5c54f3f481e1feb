from django.core.management.base import BaseCommand

from shop.demo_data import load_demo_data


class Command(BaseCommand):
    help = (
        "Create the demo catalogue: five products with try-on garments and four model "
        "photos (two offered to shoppers), all drawn by code. Running it again creates "
        "only what is missing."
    )

    def handle(self, *args, **options):
        report = load_demo_data()
        if options["verbosity"] >= 1:
            self.stdout.write(str(report))
