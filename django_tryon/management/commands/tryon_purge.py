"""``manage.py tryon_purge``: erase shopper photos and results past their retention now."""

from django.core.management.base import BaseCommand

from django_tryon.retention import purge_expired


class Command(BaseCommand):
    help = (
        "Erase shopper photos older than TRYON['PERSON_IMAGE_TTL'] and shopper results "
        "older than TRYON['RESULT_TTL'] (the worker does this on every pass too)."
    )

    def handle(self, *args, **options):
        counts = purge_expired()
        verbosity = options["verbosity"]
        if verbosity >= 1:
            self.stdout.write(
                f"Erased {counts['person_images']} person photo(s) and "
                f"{counts['results']} result(s); removed {counts['usage_rows']} old "
                f"daily usage row(s)."
            )
        if counts["errors"]:
            self.stderr.write(
                f"{counts['errors']} file(s) could not be erased; they are tried again "
                "on the next purge (see the django_tryon.retention log)."
            )
