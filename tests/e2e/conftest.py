"""End-to-end tests: real worker processes on PostgreSQL (and Redis for Celery).

They run only when named on the command line (``pytest tests/e2e``), as
``.ci/run`` does once it has started PostgreSQL and Redis: a plain ``pytest``
or ``make test`` does not collect them, so nothing shows as skipped.
"""

import sys
from pathlib import Path

import pytest
from django.db import connection

from tests.support.collection import ignore_unless_asked
from tests.support.processes import Process

HERE = Path(__file__).resolve().parent


pytest_ignore_collect = ignore_unless_asked(HERE)


@pytest.fixture(autouse=True)
def _needs_postgresql(transactional_db):
    if connection.vendor != "postgresql":
        pytest.fail(
            "tests/e2e runs several processes on one database and needs PostgreSQL: "
            "set TRYON_TEST_DATABASE_URL=postgres://user:password@host:port/name "
            "(bash .ci/run starts one)."
        )


@pytest.fixture
def processes(tmp_path):
    """Start processes with ``processes.manage(name, command, *args, env=...)`` or
    ``processes.python(name, *args, env=...)``;
    whatever is still running at the end of the test is killed."""
    started = []
    log_dir = tmp_path / "logs"
    log_dir.mkdir()

    class Starter:
        def manage(self, name, command, *args, env):
            """``django-admin <command> <args>``."""
            return self.python(name, "-m", "django", command, *args, env=env)

        def python(self, name, *args, env):
            """``python <args>``."""
            process = Process(name, [sys.executable, *args], env, log_dir)
            started.append(process)
            return process

    yield Starter()
    for process in started:
        process.ensure_dead()
