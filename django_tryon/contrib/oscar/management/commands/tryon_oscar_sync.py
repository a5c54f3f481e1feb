"""``manage.py tryon_oscar_sync``: make or update the garments of every Oscar product."""

from django.core.management.base import BaseCommand

from ...sync import sync_catalogue


class Command(BaseCommand):
    help = (
        "Make or update the try-on garment of every Oscar product, from TRYON_OSCAR and the "
        "products' pictures. Run it after installing the app on an existing catalogue, and "
        "after changing TRYON_OSCAR; product changes are followed on their own."
    )

    def handle(self, *args, **options):
        report = sync_catalogue()
        if options["verbosity"] >= 1:
            self.stdout.write(
                f"{_count(report.made, 'garment')} made, {report.kept} kept in step, "
                f"{_count(report.skipped, 'product')} without a garment."
            )


def _count(number, noun):
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
