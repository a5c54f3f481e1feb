"""``manage.py tryon_poll`` tells what it works with and what each pass did."""

import re
import socket
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.urls import reverse

from django_tryon.models import TryOnJob
from tests.support import contract

# The command's loop closes stale connections between passes, as it must in
# production; on PostgreSQL that needs tests outside one wrapping transaction.
pytestmark = pytest.mark.django_db(transaction=True)


def closed_port():
    """A port of 127.0.0.1 that nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def poll(*args):
    out = StringIO()
    call_command("tryon_poll", "--once", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def tryon(settings, provider):
    settings.TRYON = {
        "API_KEY": "key-never-shown",
        "BASE_URL": provider.url,
        "POLL_INTERVAL": 0,
        "RETRY_BACKOFF": 0,
        "MAX_ATTEMPTS": 2,
        "CONCURRENCY": 2,
        "IDLE_INTERVAL": 60,
    }
    return settings.TRYON


def test_the_worker_says_what_it_works_with_at_start(settings, tryon, provider, db):
    port = provider.url.rsplit(":", 1)[1]
    settings.TRYON = {**tryon, "BASE_URL": f"http://shop:url-password@127.0.0.1:{port}"}

    first, *_ = poll().splitlines()

    assert re.fullmatch(r"Worker \S+: .*", first)
    assert (
        f"backend ailabapi (django_tryon.backends.ailab.AILabBackend) at http://127.0.0.1:{port},"
        in first
    )
    assert "concurrency 2," in first
    assert first.endswith(f"database {connection.vendor} {connection.settings_dict['NAME']}")
    assert "key-never-shown" not in first and "url-password" not in first
    assert poll("-v", "0") == ""


def test_an_unreachable_provider_is_told_attempt_by_attempt(
    settings, tryon, make_job, caplog, admin_client
):
    settings.TRYON = {**tryon, "BASE_URL": f"http://127.0.0.1:{closed_port()}"}
    job = make_job()

    first = poll()
    # The submit never reached the provider: nothing was submitted.
    assert "Pass: claimed 1, retried 1, errors: provider_unavailable 1" in first
    assert "submitted" not in first
    (retry,) = [r.getMessage() for r in caplog.records if "attempt 1 of 2 failed" in r.getMessage()]
    assert re.search(
        r"next at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*: Could not reach the provider", retry
    )
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("pending", 1)
    assert "Could not reach the provider" in job.error_detail  # staff see it while it retries

    second = poll()
    assert "Pass: claimed 1, failed 1, errors: provider_unavailable 1" in second
    assert "submitted" not in second and "retried" not in second
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "provider_unavailable")
    page = admin_client.get(reverse("admin:django_tryon_tryonjob_change", args=[job.pk]))
    assert "Could not reach the provider" in page.content.decode()


def test_a_final_failure_names_the_address_it_tried_in_the_log_and_the_admin(
    settings, tryon, provider, make_job, caplog, admin_client
):
    settings.TRYON = {**tryon, "MAX_ATTEMPTS": 1}
    port = closed_port()
    job = make_job(status="queued", provider="ailabapi", provider_task_id="t-1")
    provider.script_query("t-1", ("done", f"http://127.0.0.1:{port}/results/t-1.png"))

    assert "failed 1" in poll()

    (line,) = [
        r.getMessage() for r in caplog.records if "failed after 1 attempts" in r.getMessage()
    ]
    for text in (line, TryOnJob.objects.get(pk=job.pk).error_detail):
        assert f"port={port}" in text and "/results/t-1.png" in text
    page = admin_client.get(reverse("admin:django_tryon_tryonjob_change", args=[job.pk]))
    assert f"port={port}" in page.content.decode()
    listing = admin_client.get(reverse("admin:django_tryon_tryonjob_changelist"))
    assert f"port={port}" in listing.content.decode()  # the error column's hover text


def test_a_pass_that_submits_counts_the_submits_the_provider_took(tryon, provider, make_job):
    for _ in range(2):
        make_job()
    provider.script_submit((503, contract.error_answer(503, "ERROR_INSUFFICIENT_RESOURCES")))
    out = poll()
    assert "Pass: claimed 2, submitted 1, retried 1, errors: provider_unavailable 1" in out


def test_a_database_not_migrated_stops_with_what_to_run(tryon):
    # It failed on its first query with a traceback ("no such table").
    recorder = MigrationRecorder(connection)
    (latest,) = [
        name
        for app, name in MigrationLoader(connection).graph.leaf_nodes()
        if app == "django_tryon"
    ]
    recorder.record_unapplied("django_tryon", latest)
    try:
        with pytest.raises(CommandError) as stopped:
            poll()
    finally:
        recorder.record_applied("django_tryon", latest)
    assert str(stopped.value) == (
        f"The database 'default' lacks 1 migration(s) the try-on app needs "
        f"(django_tryon.{latest}): run `python manage.py migrate` first."
    )
    assert "Worker" in poll()  # migrated: it starts
