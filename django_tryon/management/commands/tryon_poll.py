import logging
import signal
import threading
from typing import TextIO, cast

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import connections, router
from django.db.migrations.executor import MigrationExecutor

from django_tryon import runner
from django_tryon.models import TryOnJob
from django_tryon.worker import Worker

LOG_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}


class Command(BaseCommand):
    help = (
        "Run the try-on worker: submit pending jobs to the provider, poll them, "
        "and store their results. Loops until SIGINT or SIGTERM; --once does one pass."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Do one pass and exit.")
        parser.add_argument(
            "--worker-id", help="A name for this worker in leases and logs (default host:pid)."
        )

    def handle(self, *args, once=False, worker_id=None, verbosity=1, **options):
        self._configure_logging(verbosity)
        self._require_migrations()
        stop = threading.Event()
        if not once:
            self._stop_on_signals(stop)
        try:
            worker = self.make_worker(worker_id=worker_id)
        except ImproperlyConfigured as err:
            raise CommandError(str(err)) from err
        if verbosity >= 1:
            self.stdout.write(f"Worker {worker.worker_id}: {worker.describe()}")

        def report(pass_report):
            if verbosity >= 2 or (verbosity >= 1 and (once or pass_report.did_work)):
                self.stdout.write(f"Pass: {pass_report}")

        with worker:
            passes = runner.run(worker, stop=stop, once=once, on_pass=report)
        if verbosity >= 2:
            self.stdout.write(f"Stopped after {passes} pass(es).")

    def _require_migrations(self):
        """Stop with what to run when the database lacks migrations the app needs (the
        worker failed on its first query with a traceback: no such table)."""
        using = router.db_for_write(TryOnJob)
        executor = MigrationExecutor(connections[using])
        leaves = [node for node in executor.loader.graph.leaf_nodes() if node[0] == "django_tryon"]
        pending = [f"{m.app_label}.{m.name}" for m, _ in executor.migration_plan(leaves)]
        if pending:
            raise CommandError(
                f"The database '{using}' lacks {len(pending)} migration(s) the try-on app "
                f"needs ({', '.join(pending[:3])}{', ...' if len(pending) > 3 else ''}): "
                "run `python manage.py migrate` first."
            )

    def make_worker(self, **kwargs):
        """The engine this command runs (a subclass may pass it more, such as a checkpoint)."""
        return Worker(**kwargs)

    def _configure_logging(self, verbosity):
        logger = logging.getLogger("django_tryon")
        logger.setLevel(LOG_LEVELS.get(verbosity, logging.DEBUG))
        if not logger.handlers and not logging.getLogger().handlers:
            handler = logging.StreamHandler(cast(TextIO, self.stderr._out))
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logger.addHandler(handler)

    def _stop_on_signals(self, stop):
        def request_stop(signum, frame):
            if stop.is_set():
                # A second signal: stop now, without finishing the pass.
                raise KeyboardInterrupt
            self.stderr.write("Stopping after the current pass...")
            stop.set()

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
