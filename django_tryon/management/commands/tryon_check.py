import json

from django.core.management.base import BaseCommand, CommandError

from django_tryon import diagnostics

MARKS = {diagnostics.OK: "ok", diagnostics.SKIPPED: "skip", diagnostics.FAILED: "FAIL"}


class Command(BaseCommand):
    help = (
        "Check the try-on configuration against the real world: the provider with the "
        "configured key, a file written and deleted on each storage, results served at "
        "their URLs, the result hosts. One line per check; exit status 1 if any failed."
    )
    # The system checks are one of the lines, not a reason not to run the others.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--site-url",
            help="The running site's address, to fetch results whose URLs are relative "
            "(MEDIA_URL = '/media/'), e.g. http://127.0.0.1:8000.",
        )
        parser.add_argument("--json", action="store_true", help="A JSON list instead of lines.")

    def handle(self, *args, **options):
        findings = diagnostics.run_all(site_url=options["site_url"])
        if options["json"]:
            self.stdout.write(json.dumps([f.as_dict() for f in findings], indent=2))
        else:
            for finding in findings:
                line = f"[{MARKS[finding.status]}] {finding.name}: {finding.message}"
                if finding.hint and finding.status != diagnostics.OK:
                    line += f" -> {finding.hint}"
                style = self.style.ERROR if finding.status == diagnostics.FAILED else str
                self.stdout.write(style(line))
        failures = diagnostics.failed(findings)
        if failures:
            raise CommandError(
                f"{len(failures)} of {len(findings)} checks failed: "
                + ", ".join(f.name for f in failures),
                returncode=1,
            )
