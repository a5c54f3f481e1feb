"""Failover end to end: the primary's credits run out mid-run.

Two sandboxes on loopback, the primary speaking AILabAPI's protocol with a few
credits, the fallback FASHN's; two ``tryon_poll`` processes on PostgreSQL. No job
is lost, none is paid twice (each photo becomes one task across both providers),
the jobs at the primary finish there, the admin warns of the switch, and the
primary takes new jobs again once it is topped up.
"""

import re
from collections import Counter
from email import message_from_string

import pytest
from django.core.cache import cache
from django.urls import reverse

from django_tryon.models import TERMINAL_STATUSES, ProviderHealth, TryOnJob
from tests.support.jobs import make_jobs
from tests.support.processes import process_env, wait_until
from tests.support.recording_sandbox import RecordingSandbox, photo_digest

CREDITS = 12
FIRST_JOBS = 30
LATER_JOBS = 10
WORKERS = 2


@pytest.fixture
def primary():
    server = RecordingSandbox(
        processing_time=2.0, result_mode="plain", credits=CREDITS, api_key="primary-key", seed=3
    ).start()
    yield server
    server.stop()


@pytest.fixture
def fallback():
    server = RecordingSandbox(
        protocol="fashn",
        processing_time=2.0,
        result_mode="plain",
        api_key="fallback-key",
        seed=4,
    ).start()
    yield server
    server.stop()


def mails(folder):
    """The subjects of the mails written to ``folder``."""
    subjects = []
    for path in sorted(folder.iterdir()):
        for chunk in path.read_text().split("-" * 79):
            if chunk.strip():
                subjects.append(message_from_string(chunk.strip())["Subject"])
    return subjects


def all_terminal():
    return not TryOnJob.objects.exclude(status__in=TERMINAL_STATUSES).exists()


def test_the_primary_running_out_mid_run_loses_no_job_and_pays_none_twice(
    primary, fallback, garment, processes, media_root, tmp_path, admin_client, settings
):
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    tryon = {
        "API_KEY": "primary-key",
        "BASE_URL": primary.url,
        "FALLBACK_BACKENDS": [
            {
                "BACKEND": "django_tryon.backends.fashn.FashnBackend",
                "API_KEY": "fallback-key",
                "BASE_URL": fallback.url,
            }
        ],
        "FAILOVER_PROBE_INTERVAL": 1.0,
        "POLL_INTERVAL": 0.5,
        "IDLE_INTERVAL": 0.2,
        "CONCURRENCY": 4,
        "BATCH_SIZE": 8,
        "LEASE_SECONDS": 60,
        "CONNECT_TIMEOUT": 2.0,
        "READ_TIMEOUT": 10.0,
    }
    jobs = make_jobs(garment, FIRST_JOBS, first=0)
    env = process_env(tryon=tryon, media_root=media_root, TRYON_E2E_MAIL_DIR=mail_dir)
    workers = [
        processes.manage(f"worker-{n}", "tryon_poll", "--worker-id", f"worker-{n}", env=env)
        for n in range(WORKERS)
    ]

    wait_until(all_terminal, timeout=180, interval=0.5, message="the first jobs terminal")
    # New jobs made while the primary is down go to the fallback.
    jobs += make_jobs(garment, LATER_JOBS, first=FIRST_JOBS)
    wait_until(all_terminal, timeout=120, interval=0.5, message="the later jobs terminal")

    assert Counter(TryOnJob.objects.values_list("status", flat=True)) == {
        "succeeded": FIRST_JOBS + LATER_JOBS
    }
    made_by = Counter(TryOnJob.objects.values_list("provider", flat=True))
    assert made_by == {"ailabapi": CREDITS, "fashn": FIRST_JOBS + LATER_JOBS - CREDITS}
    # One task per photo across both providers: no job was paid twice.
    tasks = Counter(primary.stats()["tasks_by_person"]) + Counter(
        fallback.stats()["tasks_by_person"]
    )
    assert tasks == {photo_digest(job): 1 for job in jobs}
    assert primary.stats()["accepted"]["submit"] == CREDITS
    assert primary.stats()["errors"]["ERROR_NOT_ENOUGH_CREDITS"] >= 1
    # The jobs the primary took were finished there: asked for and fetched there only.
    assert primary.stats()["requests"]["download"] == CREDITS
    assert fallback.stats()["requests"]["download"] == FIRST_JOBS + LATER_JOBS - CREDITS

    row = ProviderHealth.objects.get(provider="ailabapi")
    assert (row.state, row.reason) == ("down", "out_of_credits")
    assert "The provider reports 0 credits." in row.detail  # checked, still empty
    cache.clear()
    settings.TRYON = tryon  # the admin's process reads the workers' settings
    page = admin_client.get(reverse("admin:django_tryon_tryonjob_overview")).content.decode()
    banner = re.search(r'id="tryon-failover">(.*?)</ul>', page, re.S)
    assert banner and "new try-ons go to fashn" in banner.group(1)
    # Of two workers seeing the refusals, one told staff, once.
    assert mails(mail_dir) == ["[Django] Virtual try-on: ailabapi is down, switched over"]

    # Topped up: a worker's check (made idle too) finds credits, and new jobs go
    # back to the primary.
    primary.configure(credits=100)
    wait_until(
        lambda: ProviderHealth.objects.get(provider="ailabapi").state == "up",
        timeout=60,
        interval=0.5,
        message="the primary up again",
    )
    back = make_jobs(garment, 3, first=FIRST_JOBS + LATER_JOBS)
    wait_until(all_terminal, timeout=60, interval=0.5, message="the jobs after the switch back")
    back_by = Counter(
        TryOnJob.objects.filter(pk__in=[job.pk for job in back]).values_list("status", "provider")
    )
    assert back_by == {("succeeded", "ailabapi"): 3}
    assert mails(mail_dir)[-1] == "[Django] Virtual try-on: ailabapi is back"
    assert [worker.stop() for worker in workers] == [0] * WORKERS
    for worker in workers:
        assert "Traceback" not in worker.output
