"""Failover between providers: the switching rules, with a worker over two loopback fakes
(the primary speaking AILabAPI's protocol, the fallback FASHN's)."""

import json
import re
from datetime import datetime, time, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.core.cache import cache
from django.core.checks import run_checks
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from django_tryon import failover, transitions
from django_tryon.backends import backend_named, get_backends, get_fallback_backends
from django_tryon.backends.ailab import AILabBackend
from django_tryon.backends.base import (
    ConfigurationError,
    Credits,
    InvalidResponseError,
    OutOfCreditsError,
    ProviderConnectionError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitedError,
)
from django_tryon.failover import ProviderChain, counts_as_failure
from django_tryon.models import ProviderHealth, TryOnJob
from django_tryon.results import ResultDownloadError
from django_tryon.worker import Worker
from tests.support import contract
from tests.support.fake_provider import DROP, FakeProvider
from tests.support.jobs import refreshed
from tests.support.loopback import DrippingServer

FASHN = "django_tryon.backends.fashn.FashnBackend"
OVERVIEW = "admin:django_tryon_tryonjob_overview"


@pytest.fixture
def fallback():
    """The fallback provider: a scripted FASHN stand-in on loopback."""
    fake = FakeProvider(contract.FASHN).start()
    yield fake
    fake.stop()


@pytest.fixture
def tryon(tryon, settings, fallback):
    """The worker tests' settings (tests/conftest.py), with ``fallback`` behind the
    primary."""
    settings.ADMINS = [("Staff", "staff@example.com")]
    settings.TRYON = {
        **tryon,
        "API_KEY": "primary-key",
        "FALLBACK_BACKENDS": [
            {"BACKEND": FASHN, "API_KEY": "fallback-key", "BASE_URL": fallback.url}
        ],
        "FAILOVER_AFTER": 60,
        "FAILOVER_PROBE_INTERVAL": 30,
    }
    return settings.TRYON


class Clock:
    """The worker's clock, moved by the test. It starts a minute ahead, so that the
    jobs a test makes are due whenever the test makes them."""

    def __init__(self):
        self.now = timezone.now() + timedelta(minutes=1)

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def worker(tryon, clock):
    with Worker(worker_id="w", clock=clock) as worker:
        yield worker


def health(name):
    return ProviderHealth.objects.filter(provider=name).first()


# Refusals: out of credits, key refused ---------------------------------------------


@pytest.mark.parametrize(
    ("refusal", "reason"), [("out_of_credits", "out_of_credits"), ("bad_key", "configuration")]
)
def test_a_submit_the_primary_refuses_goes_to_the_fallback_paid_once(
    worker, provider, fallback, make_job, refusal, reason
):
    job = make_job()
    provider.script_submit(contract.AILAB.api_error(refusal))

    report = worker.run_pass()
    job = refreshed(job)
    # Refused with an answer: no task exists, nothing was charged. The job is not
    # failed, nor counted as an attempt: it goes where new jobs go now.
    assert report.rerouted == 1
    assert (job.status, job.provider, job.attempts, job.error_code) == ("pending", "", 0, "")
    assert job.error_detail  # staff can read why it moved
    row = health("ailabapi")
    assert (row.state, row.reason) == ("down", reason)

    worker.run_pass()
    job = refreshed(job)
    assert (job.status, job.provider) == ("queued", "fashn")
    worker.run_pass()
    assert refreshed(job).status == "succeeded"
    # One submit each: the primary's refusal, the fallback's task. Never two tasks.
    assert len(provider.submits) == 1
    assert len(fallback.submits) == 1
    assert fallback.submits[0][0]["Authorization"] == "Bearer fallback-key"
    assert fallback.queries == ["task-1"]


def test_the_switch_is_told_to_staff_once(worker, provider, make_job, caplog):
    make_job(), make_job()
    provider.script_submit(
        contract.AILAB.api_error("out_of_credits"), contract.AILAB.api_error("out_of_credits")
    )
    with caplog.at_level("ERROR", logger="django_tryon.failover"):
        worker.run_pass()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject.endswith("ailabapi is down, switched over")
    assert "new try-ons go to fashn" in mail.outbox[0].body
    assert "primary-key" not in mail.outbox[0].body
    assert [r.getMessage() for r in caplog.records if "is out of credits" in r.getMessage()]


def test_jobs_at_the_primary_stay_there(worker, provider, fallback, make_job):
    first = make_job()
    provider.script_query("task-1", (200, contract.query_answer(1)))
    worker.run_pass()
    assert refreshed(first).provider_task_id == "task-1"

    # The primary runs out: the next job goes to the fallback; the first one's
    # task is still asked for where it is.
    second = make_job()
    provider.script_submit(contract.AILAB.api_error("out_of_credits"))
    worker.run_pass()
    worker.run_pass()
    worker.run_pass()
    first, second = refreshed(first), refreshed(second)
    assert (first.status, first.provider) == ("succeeded", "ailabapi")
    assert (second.status, second.provider) == ("succeeded", "fashn")
    assert provider.queries == ["task-1", "task-1"]
    assert fallback.queries == ["task-1"]  # the fallback's own first task id
    assert len(provider.submits) == 2 and len(fallback.submits) == 1


def test_with_no_provider_up_a_refused_job_fails_as_without_failover(
    worker, provider, fallback, make_job
):
    job = make_job()
    provider.script_submit(contract.AILAB.api_error("out_of_credits"))
    fallback.script_submit(contract.FASHN.api_error("out_of_credits"))
    worker.run_pass()
    worker.run_pass()
    job = refreshed(job)
    assert (job.status, job.error_code, job.provider) == ("failed", "out_of_credits", "fashn")
    assert len(provider.submits) == 1 and len(fallback.submits) == 1
    assert {row.provider: row.state for row in ProviderHealth.objects.all()} == {
        "ailabapi": "down",
        "fashn": "down",
    }
    # Nothing is up: the next job goes to the primary, and ends as it would alone.
    late = make_job()
    provider.script_submit(contract.AILAB.api_error("out_of_credits"))
    worker.run_pass()
    assert refreshed(late).error_code == "out_of_credits"
    assert len(provider.submits) == 2 and len(fallback.submits) == 1


# Transient failures ----------------------------------------------------------------


def test_transient_failures_switch_only_after_failover_after(
    worker, provider, fallback, make_job, clock
):
    job = make_job()
    unavailable = contract.AILAB.api_error("unavailable")  # a JSON 500: surely no task
    provider.script_submit(unavailable, unavailable, unavailable)
    worker.run_pass()
    assert health("ailabapi").state == "up"
    clock.advance(30)
    worker.run_pass()
    assert health("ailabapi").state == "up"
    job = refreshed(job)
    assert (job.status, job.attempts, job.provider) == ("pending", 2, "")

    clock.advance(31)  # 61 s of failing, nothing answered in between
    worker.run_pass()
    row = health("ailabapi")
    assert (row.state, row.reason) == ("down", "unavailable")
    assert "PROCESSING_FAILURE" in row.detail
    job = refreshed(job)
    assert job.status == "failed"  # its third attempt: MAX_ATTEMPTS
    late = make_job()
    worker.run_pass()
    assert refreshed(late).provider == "fashn"
    assert len(provider.submits) == 3 and len(fallback.submits) == 1


def test_an_answered_call_ends_a_run_of_failures(worker, provider, make_job, clock):
    first = make_job()
    provider.script_submit(contract.AILAB.api_error("unavailable"))
    worker.run_pass()
    assert health("ailabapi").failing_since is not None
    clock.advance(10)
    worker.run_pass()  # the retry is answered
    assert refreshed(first).status == "queued"
    assert health("ailabapi").failing_since is None
    second = make_job()
    provider.script_submit(contract.AILAB.api_error("unavailable"))
    clock.advance(55)
    worker.run_pass()
    clock.advance(10)
    provider.script_submit(contract.AILAB.api_error("unavailable"))
    worker.run_pass()
    # 75 s since the first failure, but a call was answered meanwhile.
    assert health("ailabapi").state == "up"
    assert refreshed(second).attempts == 2


def test_failures_far_apart_are_no_run(worker, provider, make_job, clock):
    job = make_job()
    provider.script_submit(*[contract.AILAB.api_error("unavailable")] * 2)
    worker.run_pass()
    clock.advance(120)  # quiet for longer than FAILOVER_AFTER: a blip, then another
    worker.run_pass()
    assert health("ailabapi").state == "up"
    assert refreshed(job).attempts == 2


def test_a_submit_in_doubt_is_sent_again_only_where_it_went(
    tryon, settings, provider, fallback, make_job, clock
):
    settings.TRYON = {**tryon, "RESUBMIT_INTERRUPTED": True}
    job = make_job()
    provider.script_submit(DROP)  # the request went out: a task may exist
    with Worker(worker_id="w", clock=clock) as worker:
        worker.run_pass()
        job = refreshed(job)
        assert (job.status, job.provider, job.attempts) == ("pending", "ailabapi", 1)

        # Meanwhile the primary is found out of credits: new jobs go elsewhere,
        # but this one may have a task at the primary, so it is sent there only.
        other = make_job(next_attempt_at=clock.now - timedelta(seconds=1))
        provider.script_submit(contract.AILAB.api_error("out_of_credits"))
        TryOnJob.objects.filter(pk=job.pk).update(next_attempt_at=clock.now + timedelta(hours=1))
        worker.run_pass()
        assert health("ailabapi").state == "down"
        worker.run_pass()
        assert refreshed(other).provider == "fashn"

        TryOnJob.objects.filter(pk=job.pk).update(next_attempt_at=clock.now)
        provider.script_submit(contract.AILAB.api_error("out_of_credits"))
        worker.run_pass()
    job = refreshed(job)
    assert (job.status, job.error_code, job.provider) == ("failed", "out_of_credits", "ailabapi")
    assert len(fallback.submits) == 1  # the other job's only


def test_an_interrupted_submit_names_its_provider(worker, provider, make_job, clock):
    # The mark that precedes a submit says where it goes: a worker that dies
    # before the answer leaves the job naming the provider that may hold a task.
    job = make_job()
    provider.script_submit(contract.AILAB.api_error("out_of_credits"))
    worker.run_pass()
    job = refreshed(job)
    TryOnJob.objects.filter(pk=job.pk).update(
        submit_started_at=clock.now, provider="fashn", next_attempt_at=clock.now
    )
    worker.run_pass()
    job = refreshed(job)
    assert (job.status, job.error_code, job.provider) == ("failed", "submit_interrupted", "fashn")


def test_a_job_at_a_provider_no_longer_configured_ends_with_a_reason(worker, make_job, clock):
    job = make_job(status="queued", provider="vertex", provider_task_id="t-9")
    worker.run_pass()
    job = refreshed(job)
    assert (job.status, job.error_code) == ("failed", "configuration")
    assert "'vertex', which is no longer configured" in job.error_detail


def test_a_429_leaves_a_job_free_to_go_elsewhere(worker, provider, make_job):
    job = make_job()
    provider.script_submit(contract.AILAB.api_error("rate_limited"))
    worker.run_pass()
    job = refreshed(job)
    assert (job.status, job.provider) == ("pending", "")
    assert health("ailabapi") is None  # a 429 is no failure: nothing recorded


# Webhooks at a fallback ------------------------------------------------------------


def test_a_fallback_that_pushes_is_asked_for_a_webhook_and_its_delivery_ends_the_job(
    tryon, settings, provider, fallback, make_job, clock
):
    settings.TRYON = {**tryon, "WEBHOOK_BASE_URL": "https://shop.example.com"}
    provider.script_submit(contract.AILAB.api_error("out_of_credits"))
    job = make_job()
    with Worker(worker_id="w", clock=clock) as worker:
        worker.run_pass()  # the primary (AILabAPI, which cannot push) refuses
        worker.run_pass()  # sent to FASHN, asked to call back
        job = refreshed(job)
        assert (job.status, job.provider) == ("queued", "fashn")
        url = parse_qs(urlsplit(fallback.submit_urls[-1]).query)["webhook_url"][0]
        assert url.startswith("https://shop.example.com/tryon/webhooks/fashn/")
        result = f"{fallback.url}/results/{job.provider_task_id}.png"
        answer = contract.fashn_status_answer(job.provider_task_id, "completed", output=[result])

        # Parsed by the fallback's backend, though the primary is another provider.
        delivered = Client().post(
            urlsplit(url).path, data=json.dumps(answer), content_type="application/json"
        )
        assert delivered.status_code == 200
        clock.advance(1)
        worker.run_pass()
    assert refreshed(job).status == "succeeded"
    assert fallback.queries == []  # the push ended it, with no query
    assert len(provider.submits) + len(fallback.submits) == 2  # one refused, one task


def test_webhooks_are_checked_for_a_fallback_that_pushes(tryon, settings):
    settings.TRYON = {**tryon, "WEBHOOK_BASE_URL": "https://shop.example.com"}
    ids = {message.id for message in run_checks(tags=["django_tryon"])}
    assert "django_tryon.W031" not in ids  # FASHN, the fallback, pushes
    settings.TRYON = {**tryon, "WEBHOOK_BASE_URL": "https://shop.example.com"}
    settings.TRYON["FALLBACK_BACKENDS"] = []
    messages = [m for m in run_checks(tags=["django_tryon"]) if m.id == "django_tryon.W031"]
    assert len(messages) == 1 and "AILabBackend cannot call" in messages[0].msg


# Switching back --------------------------------------------------------------------


def test_the_primary_takes_new_jobs_again_once_its_check_answers(
    worker, provider, fallback, make_job, clock
):
    provider.script_submit(contract.AILAB.api_error("out_of_credits"))
    first = make_job()
    worker.run_pass()
    worker.run_pass()
    assert refreshed(first).provider == "fashn"
    mail.outbox.clear()

    provider.credits = 0
    clock.advance(31)
    second = make_job()
    worker.run_pass()
    row = health("ailabapi")
    assert (row.state, row.detail) == ("down", "The provider reports 0 credits.")
    assert refreshed(second).provider == "fashn"

    provider.credits = 500  # topped up
    clock.advance(10)
    third = make_job()
    worker.run_pass()  # the next check is not due yet
    assert refreshed(third).provider == "fashn"
    clock.advance(21)
    fourth = make_job()
    worker.run_pass()
    assert health("ailabapi").state == "up"
    assert refreshed(fourth).provider == "ailabapi"
    assert [message.subject for message in mail.outbox] == [
        "[Django] Virtual try-on: ailabapi is back"
    ]


def test_an_idle_worker_still_checks_a_provider_that_is_down(worker, provider, clock, db):
    ProviderHealth.objects.create(
        provider="ailabapi", state="down", reason="out_of_credits", next_probe_at=clock.now
    )
    provider.credits = 0
    assert worker.run_pass().claimed == 0
    row = health("ailabapi")
    assert (row.state, row.detail) == ("down", "The provider reports 0 credits.")
    provider.credits = 10
    ProviderHealth.objects.filter(pk=row.pk).update(next_probe_at=clock.now)
    worker.run_pass()  # idle checks are made once per FAILOVER_PROBE_INTERVAL (30 s)
    assert health("ailabapi").state == "down"
    clock.advance(31)
    worker.run_pass()
    assert health("ailabapi").state == "up"


def test_one_worker_checks_a_provider_per_interval(tryon, clock, db):
    now = clock()
    primary, fallback = get_backends()
    calls = []

    class Probe(AILabBackend):
        def credits(self):
            calls.append(self)
            return Credits(remaining=0)

    probes = [Probe(), fallback]
    first = ProviderChain([primary, fallback], probes=probes)
    second = ProviderChain([primary, fallback], probes=probes)
    first.failed("ailabapi", OutOfCreditsError("none left"), now)
    for chain in (first, second):
        chain.refresh()
    later = now + timedelta(seconds=31)
    first.probe(later)
    second.probe(later)
    assert len(calls) == 1


def test_a_provider_that_comes_and_goes_mails_once_a_day_each_way(tryon, db, caplog):
    primary, fallback = get_backends()

    class Probe(AILabBackend):
        def credits(self):
            return Credits(remaining=10)

    chain = ProviderChain([primary, fallback], probes=[Probe(), fallback])
    # Its minutes of switching are within one (local) day, whenever the suite runs.
    now = timezone.make_aware(datetime.combine(timezone.localdate(), time(12)))
    with caplog.at_level("WARNING", logger="django_tryon.failover"):
        for _round in range(3):  # down, checked, back: three times in the day
            chain.refresh()
            assert chain.failed("ailabapi", OutOfCreditsError("none left"), now)
            now += timedelta(seconds=31)
            assert chain.probe(now) == ["ailabapi"]
    # Every switch is logged; the inbox has the first of each direction.
    logged = [r.getMessage() for r in caplog.records]
    assert len([text for text in logged if "is out of credits" in text]) == 3
    assert len([text for text in logged if "answers again" in text]) == 3
    assert [message.subject for message in mail.outbox] == [
        "[Django] Virtual try-on: ailabapi is down, switched over",
        "[Django] Virtual try-on: ailabapi is back",
    ]
    assert "sent once a day for each provider" in mail.outbox[0].body

    # The next day, the first switch is mailed again.
    chain.failed("ailabapi", OutOfCreditsError("none left"), now + timedelta(days=1))
    assert len(mail.outbox) == 3


# The rules, on their own ------------------------------------------------------------


def test_of_two_workers_seeing_one_refusal_one_records_the_switch(tryon, clock, db):
    now = clock()
    chains = [ProviderChain(get_backends()) for _ in range(2)]
    for chain in chains:
        chain.refresh()
    results = [chain.failed("ailabapi", OutOfCreditsError("none"), now) for chain in chains]
    assert sorted(results) == [False, True]
    assert len(mail.outbox) == 1
    for chain in chains:
        chain.refresh()
        assert chain.choose().provider_name == "fashn"


def test_workers_failing_in_turn_share_one_run_of_failures(tryon, clock, db):
    first, second = (ProviderChain(get_backends()) for _ in range(2))
    for chain in (first, second):
        chain.refresh()  # neither has seen a failure yet
    start = clock()
    down = ProviderUnavailableError("503")
    assert first.failed("ailabapi", down, start) is False
    # The second worker had read no failure: its own does not restart the run.
    assert second.failed("ailabapi", down, start + timedelta(seconds=30)) is False
    assert first.failed("ailabapi", down, start + timedelta(seconds=61)) is True
    assert health("ailabapi").failing_since == start


@pytest.mark.parametrize(
    ("err", "counts"),
    [
        (ProviderUnavailableError("503"), True),
        (ProviderConnectionError("refused"), True),
        (InvalidResponseError("not JSON"), True),
        (RateLimitedError("slow down"), False),
        (ResultDownloadError("the CDN"), False),
        (OutOfCreditsError("none"), False),  # a refusal: switches at once instead
        (ConfigurationError("bad key"), False),
        (ValueError("a bug"), False),
    ],
)
def test_what_counts_as_a_provider_failing(err, counts):
    assert counts_as_failure(err) is counts


def test_without_fallbacks_no_state_is_kept(settings, provider, clock, db):
    settings.TRYON = {"API_KEY": "k", "BASE_URL": provider.url}
    chain = ProviderChain(get_backends())
    assert not chain.failover
    assert chain.failed("ailabapi", OutOfCreditsError("none"), clock()) is False
    assert not ProviderHealth.objects.exists()
    assert chain.choose() is chain.primary


def test_a_state_left_from_fallbacks_since_removed_is_not_shown(
    settings, provider, admin_client, db
):
    # The shop tried failover, its provider went down, then FALLBACK_BACKENDS was
    # removed: nothing checks the row again, and the overview warned for good that new
    # try-ons fail ("no other provider is up") while they succeed at the provider.
    ProviderHealth.objects.create(provider="ailabapi", state="down", reason="out_of_credits")
    settings.TRYON = {"API_KEY": "k", "BASE_URL": provider.url}
    cache.clear()
    (only,) = failover.status()
    assert (only.name, only.up, only.serving, only.reason) == ("ailabapi", True, True, "")
    page = admin_client.get(reverse(OVERVIEW)).content.decode()
    assert 'id="tryon-failover"' not in page
    assert "is down" not in page


def test_a_fallback_never_inherits_the_primary_key_or_address(settings):
    settings.TRYON = {
        "API_KEY": "primary-key",
        "BASE_URL": "http://127.0.0.1:9",
        "OPTIONS": {"mode": "quality"},
        "FALLBACK_BACKENDS": [{"BACKEND": FASHN, "API_KEY": "fallback-key"}],
    }
    (fashn,) = get_fallback_backends()
    assert (fashn.api_key, fashn.base_url) == ("fallback-key", "https://api.fashn.ai")
    assert fashn.options["mode"] == "balanced"


def test_the_backend_of_a_provider_by_its_name_primary_or_fallback(settings):
    settings.TRYON = {
        "API_KEY": "primary-key",
        "BASE_URL": "http://127.0.0.1:9",
        "FALLBACK_BACKENDS": [{"BACKEND": FASHN, "API_KEY": "fallback-key"}],
    }
    primary, fashn = backend_named("ailabapi"), backend_named("fashn", read_timeout=3)
    assert (type(primary), primary.api_key) == (AILabBackend, "primary-key")
    assert (fashn.provider_name, fashn.api_key, fashn.timeout[1]) == ("fashn", "fallback-key", 3)
    assert backend_named("vertex") is None


def test_staff_retrying_a_job_send_it_where_new_jobs_go_unless_its_submit_was_in_doubt(
    make_job,
):
    now = timezone.now()
    plain = make_job(status="failed", error_code="task_failed", provider="ailabapi")
    in_doubt = make_job(status="failed", error_code="submit_interrupted", provider="ailabapi")
    transitions.apply([plain.pk, in_doubt.pk], transitions.sent_back(now), now=now)
    assert refreshed(plain).provider == ""
    assert refreshed(in_doubt).provider == "ailabapi"
    assert {refreshed(plain).status, refreshed(in_doubt).status} == {"pending"}


def test_the_worker_names_its_fallbacks_at_start(worker, fallback):
    described = worker.describe()
    assert f"fallback fashn (django_tryon.backends.fashn.FashnBackend) at {fallback.url}" in (
        described
    )
    assert "fallback-key" not in described


# What staff see ---------------------------------------------------------------------


def provider_cells(page, name):
    """The cells of the providers table's row of ``name``, as text."""
    match = re.search(rf'<tr id="tryon-provider-{name}">(.*?)</tr>', page, flags=re.S)
    assert match, f"no row for {name}"
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", cell)).strip()
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", match.group(1), flags=re.S)
    ]


def test_the_overview_shows_each_provider_and_warns_of_a_switch(
    admin_client, worker, provider, fallback, garment, make_job
):
    cache.clear()
    now = timezone.now()
    for name, status, seconds in [
        ("ailabapi", "succeeded", 10),
        ("ailabapi", "succeeded", 30),
        ("ailabapi", "failed", None),
        ("fashn", "succeeded", 8),
    ]:
        submitted = now - timedelta(minutes=30)
        TryOnJob.objects.create(
            garment=garment,
            provider=name,
            status=status,
            submitted_at=submitted,
            finished_at=submitted + timedelta(seconds=seconds or 1),
        )
    page = admin_client.get(reverse(OVERVIEW)).content.decode()
    assert 'id="tryon-failover"' not in page
    assert provider_cells(page, "ailabapi") == [
        "takes new try-ons",
        *["3 (75.0 %)", "66.7 %", "20.0 s", "29.0 s"] * 2,
    ]
    assert provider_cells(page, "fashn")[:5] == [
        "standing by",
        "1 (25.0 %)",
        "100.0 %",
        "8.0 s",
        "8.0 s",
    ]

    provider.script_submit(contract.AILAB.api_error("out_of_credits"))
    make_job()
    worker.run_pass()
    page = admin_client.get(reverse(OVERVIEW)).content.decode()
    banner = re.search(r'<ul class="messagelist" id="tryon-failover">(.*?)</ul>', page, re.S)
    assert banner
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", banner.group(1)))
    assert "The provider ailabapi is down (out of credits) since" in text
    assert "new try-ons go to fashn. Jobs already at ailabapi stay there." in text
    assert "ERROR_NOT_ENOUGH_CREDITS" in text
    assert provider_cells(page, "ailabapi")[0] == "down: out of credits"
    assert provider_cells(page, "fashn")[0] == "takes new try-ons"
    # Each provider's credits, the fallback's included.
    credits = re.search(r'id="tryon-credits">(.*?)</div>', page, re.S).group(1)
    assert "<strong>ailabapi</strong>: 1000 credits left." in credits
    assert "<strong>fashn</strong>: 1000 credits left." in credits
    assert fallback.others == []


# The settings' checks -------------------------------------------------------------


def check_ids(settings, fallbacks, **primary):
    settings.TRYON = {"API_KEY": "primary-key", **primary, "FALLBACK_BACKENDS": fallbacks}
    return [
        (message.id, message.msg)
        for message in run_checks(tags=["django_tryon"])
        if message.id != "django_tryon.W011"
    ]


@pytest.mark.parametrize(
    ("fallbacks", "expected_id", "words"),
    [
        ({"BACKEND": FASHN}, "django_tryon.E050", "must be a list of dicts"),
        (["fashn"], "django_tryon.E050", "[0] must be a dict with a 'BACKEND'"),
        ([{"BACKEND": "nowhere.Backend"}], "django_tryon.E050", "cannot be imported"),
        (
            [{"BACKEND": FASHN, "API_KEY": "k", "KEY": "typo"}],
            "django_tryon.E050",
            "[0] has the key 'KEY'",
        ),
        ([{"BACKEND": FASHN}], "django_tryon.E051", "[0] (django_tryon.backends.fashn"),
        (
            [{"BACKEND": FASHN, "API_KEY": "k", "OPTIONS": {"mode": "fast"}}],
            "django_tryon.E052",
            "for FashnBackend's option 'mode' in TRYON['FALLBACK_BACKENDS'][0]['OPTIONS']",
        ),
        (
            [{"BACKEND": FASHN, "API_KEY": "k"}, {"BACKEND": FASHN, "API_KEY": "j"}],
            "django_tryon.E053",
            "[1] is a second 'fashn' backend",
        ),
        (
            [{"BACKEND": "django_tryon.backends.ailab.AILabBackend", "API_KEY": "k"}],
            "django_tryon.E053",
            "[0] is a second 'ailabapi' backend",
        ),
        (
            [{"BACKEND": FASHN, "API_KEY": "k", "BASE_URL": "api.fashn.ai"}],
            "django_tryon.E004",
            "TRYON['FALLBACK_BACKENDS'][0]['BASE_URL'] is 'api.fashn.ai'",
        ),
        (
            [{"BACKEND": FASHN, "API_KEY": "k", "BASE_URL": "http://fashn.example"}],
            "django_tryon.W001",
            "TRYON['FALLBACK_BACKENDS'][0]['BASE_URL'] (http://fashn.example) is plain http",
        ),
    ],
)
def test_a_wrong_fallback_is_named_by_the_checks(settings, fallbacks, expected_id, words):
    found = check_ids(settings, fallbacks)
    assert [check_id for check_id, _ in found] == [expected_id], found
    assert words in found[0][1]


def test_a_good_chain_passes_the_checks(settings):
    fallbacks = [{"BACKEND": FASHN, "API_KEY": "k", "OPTIONS": {"mode": "quality"}}]
    assert check_ids(settings, fallbacks) == []
    assert check_ids(settings, []) == []


def test_a_check_of_a_provider_that_drips_its_answer_is_cut_off_at_the_probes_deadline(
    tryon, settings, monkeypatch, clock
):
    """The probe's own short timeouts, their sum in all: a provider that is down and
    answers a byte at a time holds a worker's pass no longer."""
    body = json.dumps({"error_code": 0, "data": {"api_credits": 100}}).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
    slow = DrippingServer(head, body, "body")  # 0.2 s a byte: 8 s and more in all
    settings.TRYON = {**tryon, "BASE_URL": slow.url}
    monkeypatch.setattr("django_tryon.worker.PROBE_TIMEOUTS", (1.0, 1.0))
    try:
        with Worker(worker_id="probe", clock=clock) as worker:
            probe = worker.chain.probes["ailabapi"]
            assert probe.call_timeout == 2
            with pytest.raises(ProviderTimeoutError, match="longer than 2 s in all"):
                probe.credits()  # what the check asks
    finally:
        slow.stop()
    assert slow.requests == 1
