import json
import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

try:
    from django_tryon.sandbox.fal import JWKS_PATH
    from django_tryon.sandbox.faults import DROP_PHASES, RESULT_MODES, Options
    from django_tryon.sandbox.protocol import PROTOCOLS
except ImportError as err:  # the sandbox extra (NumPy) is not installed
    SANDBOX_MISSING: ImportError | None = err
else:
    SANDBOX_MISSING = None


class Command(BaseCommand):
    help = (
        "Run the sandbox: a try-on provider on loopback speaking AILabAPI's protocol "
        "(or FASHN's, --protocol fashn, or fal's, --protocol fal), with fault injection. "
        "Point TRYON['BASE_URL'] at the address it prints."
    )

    def run_from_argv(self, argv):
        # Said before the options are parsed: one line with the fix, not a traceback.
        if SANDBOX_MISSING is not None:
            self.stderr.write(f"CommandError: {SANDBOX_MISSING}")
            sys.exit(1)
        super().run_from_argv(argv)

    def add_arguments(self, parser):
        if SANDBOX_MISSING is not None:
            return
        defaults = Options()
        parser.add_argument(
            "--protocol",
            choices=PROTOCOLS,
            default="ailab",
            help="The provider whose API the sandbox speaks.",
        )
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on.")
        parser.add_argument("--port", type=int, default=8765, help="Port (0: any free port).")
        parser.add_argument(
            "--allow-remote",
            action="store_true",
            help="Allow a host that is not loopback (the sandbox has no real security).",
        )
        parser.add_argument(
            "--allowed-host",
            action="append",
            default=[],
            metavar="NAME",
            help="A host name the sandbox answers to besides loopback's (repeatable).",
        )
        parser.add_argument("--api-key", help="Accept only this key (default: any non-empty key).")
        parser.add_argument("--credits", type=int, default=1_000_000, help="Starting balance.")
        parser.add_argument("--seed", type=int, help="Seed of the fault dice, to repeat a run.")
        parser.add_argument("--processing-time", type=float, default=defaults.processing_time)
        parser.add_argument("--result-ttl", type=float, default=defaults.result_ttl)
        parser.add_argument("--result-mode", choices=RESULT_MODES, default=defaults.result_mode)
        parser.add_argument("--latency", type=float, default=0.0, help="Seconds per answer.")
        parser.add_argument("--rate-limited", type=float, default=0.0, metavar="SHARE")
        parser.add_argument("--server-errors", type=float, default=0.0, metavar="SHARE")
        parser.add_argument("--server-error-statuses", default="500,502,503,504", metavar="LIST")
        parser.add_argument("--drop", type=float, default=0.0, metavar="SHARE")
        parser.add_argument("--drop-phase", choices=DROP_PHASES, default=defaults.drop_phase)
        parser.add_argument("--task-failures", type=float, default=0.0, metavar="SHARE")
        parser.add_argument("--no-face", type=float, default=0.0, metavar="SHARE")
        parser.add_argument("--result-404", type=float, default=0.0, metavar="SHARE")
        parser.add_argument("--max-rps", type=float, default=0.0, help="0: no limit.")
        parser.add_argument("--fault-targets", default="submit,query,credits", metavar="LIST")
        parser.add_argument(
            "--webhook-delay", type=float, default=0.0, help="Seconds before a webhook is sent."
        )
        parser.add_argument("--webhook-duplicate", type=float, default=0.0, metavar="SHARE")
        parser.add_argument("--webhook-missing", type=float, default=0.0, metavar="SHARE")
        parser.add_argument(
            "--webhook-retry-interval", type=float, default=defaults.webhook_retry_interval
        )

    def handle(self, *args, **options):
        if SANDBOX_MISSING is not None:
            raise CommandError(str(SANDBOX_MISSING))
        from django_tryon.sandbox.server import NotLoopbackError, SandboxServer

        verbosity = options["verbosity"]
        try:
            server = SandboxServer(
                options["host"],
                options["port"],
                api_key=options["api_key"],
                credits=options["credits"],
                seed=options["seed"],
                allow_remote=options["allow_remote"],
                allowed_hosts=options["allowed_host"],
                log=self.stderr.write if verbosity >= 2 else None,
                protocol=options["protocol"],
                **_options(options),
            )
        except NotLoopbackError as err:
            raise CommandError(
                f"{err} {_('Pass --allow-remote to listen elsewhere anyway.')}"
            ) from err
        except (ValueError, ImportError) as err:
            raise CommandError(str(err)) from err
        except OSError as err:
            raise CommandError(
                _("Cannot listen on %(host)s:%(port)s: %(error)s")
                % {
                    "host": options["host"],
                    "port": options["port"],
                    "error": err,
                }
            ) from err
        if verbosity >= 1:
            self.stdout.write(_("Sandbox provider listening on %(url)s") % {"url": server.url})
            if options["protocol"] == "fashn":
                self.stdout.write(
                    _("It speaks FASHN's protocol: set TRYON['BACKEND'] = %(backend)r.")
                    % {"backend": "django_tryon.backends.fashn.FashnBackend"}
                )
            elif options["protocol"] == "fal":
                self.stdout.write(
                    _(
                        "It speaks fal's protocol: set TRYON['BACKEND'] = %(backend)r and "
                        "TRYON['OPTIONS']['jwks_url'] = %(jwks)r."
                    )
                    % {
                        "backend": "django_tryon.backends.fal.FalBackend",
                        "jwks": server.url + JWKS_PATH,
                    }
                )
            self.stdout.write(
                _("Set TRYON['BASE_URL'] = %(url)r. Options: %(options)s")
                % {"url": server.url, "options": json.dumps(server.options.as_dict())}
            )
            self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.httpd.server_close()


def _options(options):
    """The command's options as :class:`Options` fields."""

    def listed(value, convert=str):
        return [convert(item.strip()) for item in value.split(",") if item.strip()]

    try:
        statuses = listed(options["server_error_statuses"], int)
    except ValueError as err:
        raise CommandError(f"--server-error-statuses: {err}") from err
    return {
        "processing_time": options["processing_time"],
        "result_ttl": options["result_ttl"],
        "result_mode": options["result_mode"],
        "latency": options["latency"],
        "rate_limited": options["rate_limited"],
        "server_errors": options["server_errors"],
        "server_error_statuses": statuses,
        "drop": options["drop"],
        "drop_phase": options["drop_phase"],
        "task_failures": options["task_failures"],
        "no_face": options["no_face"],
        "result_404": options["result_404"],
        "max_rps": options["max_rps"],
        "fault_targets": listed(options["fault_targets"]),
        "webhook_delay": options["webhook_delay"],
        "webhook_duplicate": options["webhook_duplicate"],
        "webhook_missing": options["webhook_missing"],
        "webhook_retry_interval": options["webhook_retry_interval"],
    }
