from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext


class Command(BaseCommand):
    help = (
        "Write sample pictures drawn by code: a garment (tshirt.png) and a full-body "
        "photo (me.jpg) to try it on, or every sample with --all. Needs the sandbox extra."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dir", default=".", help="Folder to write into (default: here).")
        parser.add_argument(
            "--all", action="store_true", help="Every sample garment and model photo."
        )
        parser.add_argument("--force", action="store_true", help="Replace existing files.")

    def handle(self, *args, **options):
        try:
            from django_tryon.sandbox import samples
        except ImportError as err:
            raise CommandError(str(err)) from err
        folder = Path(options["dir"])
        if not folder.is_dir():
            raise CommandError(_("%(folder)s is not a folder.") % {"folder": folder})
        files = samples.sample_files(every=options["all"])
        taken = [name for name, _kind, _slug in files if (folder / name).exists()]
        if taken and not options["force"]:
            raise CommandError(
                ngettext(
                    "%(files)s already exists in %(folder)s: pass --force to replace it.",
                    "%(files)s already exist in %(folder)s: pass --force to replace them.",
                    len(taken),
                )
                % {"files": ", ".join(taken), "folder": folder}
            )
        for name, kind, slug in files:
            path = samples.write_sample(folder, name, kind, slug)
            if options["verbosity"] >= 1:
                self.stdout.write(_("Wrote %(path)s") % {"path": path})
