"""The app tried as an attacker would (issue 14): one test or more per item, named
``test_item<N>_...``, each failing before its fix."""

import contextlib
import io
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
import responses
from django.contrib.auth import get_user_model
from django.core import mail, signing
from django.core.checks import run_checks
from django.core.files.base import ContentFile
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone, translation
from PIL import Image
from rest_framework.throttling import BaseThrottle

from django_tryon import diagnostics, quota
from django_tryon.addresses import client_address, client_group
from django_tryon.api.exceptions import AddressQuotaExceeded, GuestQuotaExceeded
from django_tryon.api.ownership import GUEST_SESSION_KEY
from django_tryon.backends import get_backend
from django_tryon.backends.ailab import AILabBackend
from django_tryon.backends.answers import read_json_answer
from django_tryon.backends.base import InvalidResponseError, ProviderConnectionError
from django_tryon.checks import sqlite_mode_warnings
from django_tryon.conf import tryon_settings
from django_tryon.deadlines import deadline, lookup, watch_socket
from django_tryon.http import EnvironmentCachingSession, PeerCheckingAdapter
from django_tryon.images import normalise_image
from django_tryon.models import DailyUsage, ModelPhoto, TryOnJob
from django_tryon.redaction import get_logger, redact
from django_tryon.results import ResultDownloadError, ResultFetcher, ResultURLForbidden
from django_tryon.sandbox.server import SandboxServer
from django_tryon.signals import job_failed
from django_tryon.worker import Worker
from tests.support import contract
from tests.support.api import (
    JOBS_URL,
    assert_error,
    job_url,
    photo,
    post_job,
)
from tests.support.concurrent_shoppers import post_at_once
from tests.support.fake_provider import result_png
from tests.support.images import grey16_png, photo_bytes
from tests.support.loopback import DrippingServer, LoopbackServer, QuietHandler
from tests.support.processes import ROOT, free_port, wait_for_port
from tests.support.threads import in_thread, wait_for

pytestmark = pytest.mark.usefixtures("fresh_throttle_cache")

OVERVIEW = "admin:django_tryon_tryonjob_overview"


def new_photo(n):
    """A photo no earlier request sent (the same photo again reuses its job)."""
    return photo(photo_bytes(color=(40 * n % 256, 90 * n % 256, 200)))


@pytest.fixture
def no_throttle(settings):
    settings.TRYON = {**settings.TRYON, "THROTTLE_RATE": None}


class CountingListener:
    """A TCP listener on 127.0.0.1 that counts the connections made to it."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.05)
        self.port = self.socket.getsockname()[1]
        self.accepted = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while not self._done.is_set():
            try:
                connection, _ = self.socket.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            connection.close()

    def close(self):
        self._done.set()
        self._thread.join(timeout=10)
        self.socket.close()


@pytest.fixture
def listener():
    made = CountingListener()
    yield made
    made.close()


# Item 1: unlimited paid jobs -------------------------------------------------------


def test_item1_a_fresh_session_per_post_does_not_give_a_fresh_quota(garment, settings):
    settings.TRYON = {**settings.TRYON, "THROTTLE_RATE": None, "DAILY_QUOTA_ADDRESS": 3}
    # Each POST from a new client: no cookie, so a new guest session every time.
    answers = [post_job(Client(), garment, new_photo(n)) for n in range(5)]

    assert [answer.status_code for answer in answers[:3]] == [201, 201, 201]
    for refused in answers[3:]:
        error = assert_error(refused, 429, "address_quota_exceeded")
        assert "tomorrow" in error["message"]
        assert 0 < int(refused["Retry-After"]) <= 24 * 60 * 60
    assert TryOnJob.objects.count() == 3
    # Another address still has its own.
    other = Client(REMOTE_ADDR="198.51.100.20")
    assert post_job(other, garment, new_photo(9)).status_code == 201


def test_item1_a_forged_forwarded_for_changes_neither_throttle_nor_quota(garment, settings):
    settings.TRYON = {**settings.TRYON, "THROTTLE_RATE": "2/min", "DAILY_QUOTA_ADDRESS": 50}
    statuses = [
        post_job(Client(), garment, new_photo(n), HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
        for n in range(1, 4)
    ]
    assert [answer.status_code for answer in statuses[:2]] == [201, 201]
    assert_error(statuses[2], 429, "throttled")
    counted = DailyUsage.objects.filter(key__startswith="address:")
    assert list(counted.values_list("key", "count")) == [(quota.address_key("127.0.0.1"), 2)]


@pytest.mark.parametrize(
    "num_proxies, forwarded, remote, expected",
    [
        (None, "203.0.113.9", "10.0.0.2", "10.0.0.2"),  # no proxy: the header is the client's
        (0, "203.0.113.9", "10.0.0.2", "10.0.0.2"),
        (1, "198.51.100.1, 203.0.113.9", "10.0.0.2", "203.0.113.9"),
        (2, "198.51.100.1, 203.0.113.9", "10.0.0.2", "198.51.100.1"),
        (3, "198.51.100.1, 203.0.113.9", "10.0.0.2", "198.51.100.1"),
        (1, None, "10.0.0.2", "10.0.0.2"),
        (1, " 203.0.113.9 ", "10.0.0.2", "203.0.113.9"),
    ],
)
def test_item1_the_client_address_honours_num_proxies_as_drf_does(
    settings, num_proxies, forwarded, remote, expected
):
    settings.REST_FRAMEWORK = {"NUM_PROXIES": num_proxies}
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    request = RequestFactory().post(JOBS_URL, **meta)

    assert client_address(request) == expected
    if num_proxies is not None:  # DRF's own reading, with the shop's proxies named
        assert BaseThrottle().get_ident(request) == expected


def test_item1_an_ipv6_client_is_counted_by_its_network():
    assert client_group("2001:db8:1:2::1") == client_group("2001:db8:1:2:ffff::9")
    assert client_group("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_group("2001:db8:1:3::1") != client_group("2001:db8:1:2::1")
    assert client_group("::ffff:203.0.113.5") == "203.0.113.5"
    assert quota.address_key("2001:db8:1:2::1") == quota.address_key("2001:db8:1:2::7")
    assert "2001" not in quota.address_key("2001:db8:1:2::1")  # no address is stored


def test_an_ipv6_address_standing_for_an_ipv4_client_is_counted_as_that_client():
    # One IPv4 host owns 65,536 /64 networks of 6to4 addresses (2002:<IPv4>::/48)
    # and as many Teredo addresses as it asks for: counted by /64, each would be a
    # new client, with a new address quota.
    sixtofour = [f"2002:cb00:7107:{subnet:x}::1" for subnet in (1, 2, 0xFFFF)]
    assert {client_group(address) for address in sixtofour} == {"203.0.113.7"}
    # Teredo: the client's address is written inside, inverted (RFC 4380).
    teredo_ports = ["2001:0:4136:e378:8000:63bf:34ff:8ef8", "2001:0:4136:e378:8000:1234:34ff:8ef8"]
    assert {client_group(address) for address in teredo_ports} == {"203.0.113.7"}
    assert client_group("64:ff9b::cb00:7107") == "203.0.113.7"  # NAT64
    assert client_group("::ffff:0:cb00:7107") == "203.0.113.7"  # IPv4-translated


def test_a_forwarded_address_with_its_port_counts_as_the_address(garment, settings):
    # Some proxies write the client's port too (Azure App Service: "203.0.113.7:51234";
    # RFC 7239's form for IPv6: "[2001:db8::1]:443"): each new connection of the
    # client came from a new port, and was counted as a new client.
    settings.REST_FRAMEWORK = {"NUM_PROXIES": 1}
    settings.TRYON = {**settings.TRYON, "THROTTLE_RATE": None, "DAILY_QUOTA_ADDRESS": 2}
    answers = [
        post_job(Client(HTTP_X_FORWARDED_FOR=f"203.0.113.7:{port}"), garment, new_photo(n))
        for n, port in enumerate([51234, 51235, 51236])
    ]
    assert [answer.status_code for answer in answers[:2]] == [201, 201]
    assert_error(answers[2], 429, "address_quota_exceeded")

    assert client_group("203.0.113.7:51234") == "203.0.113.7"
    assert client_group("[2001:db8:1:2::1]:443") == client_group("2001:db8:1:2::9")
    assert client_group("[::ffff:203.0.113.7]:80") == "203.0.113.7"
    # Not a port: left as it is, never read as another client's address.
    assert client_group("2001:db8::1") == "2001:db8::/64"
    assert client_group("203.0.113.7:http") == "203.0.113.7:http"


def test_item1_the_guests_cap_refuses_every_guest_and_tells_staff_once(
    garment, settings, no_throttle, caplog, admin_client
):
    settings.TRYON = {**settings.TRYON, "THROTTLE_RATE": None, "DAILY_QUOTA_ALL_GUESTS": 2}
    settings.ADMINS = [("Shop staff", "staff@shop.test")]
    for n in range(2):
        guest = Client(REMOTE_ADDR=f"198.51.100.{n + 1}")
        assert post_job(guest, garment, new_photo(n)).status_code == 201

    for n in range(2, 4):
        refused = post_job(Client(REMOTE_ADDR=f"198.51.100.{n + 1}"), garment, new_photo(n))
        assert_error(refused, 429, "guest_quota_exceeded")

    # Staff were told once: one error logged, one mail to ADMINS.
    told = [r for r in caplog.records if "DAILY_QUOTA_ALL_GUESTS" in r.getMessage()]
    assert len(told) == 1 and told[0].levelno == logging.ERROR
    assert len(mail.outbox) == 1 and "guests' daily cap" in mail.outbox[0].subject
    # Signed-in shoppers are not guests.
    shopper = Client()
    shopper.force_login(get_user_model().objects.create_user("dee"))
    assert post_job(shopper, garment, new_photo(5)).status_code == 201
    # The overview says it.
    with responses.RequestsMock() as provider:
        provider.get(
            "https://api.tryon.test" + contract.CREDITS_PATH,
            json={**contract.public_fields(), "data": {"credits": 10}},
        )
        page = admin_client.get(reverse(OVERVIEW)).content.decode()
    assert 'id="tryon-guest-cap-reached"' in page
    assert "The daily cap on guests' try-ons (2) is reached" in page


def test_item1_the_overview_shows_each_caps_use_today(garment, settings, admin_client):
    settings.TRYON = {
        **settings.TRYON,
        "THROTTLE_RATE": None,
        "DAILY_QUOTA_GUEST": 2,
        "DAILY_QUOTA_ADDRESS": 10,
        "DAILY_QUOTA_ALL_GUESTS": 40,
    }
    guest = Client()
    for n in range(2):
        post_job(guest, garment, new_photo(n))
    post_job(Client(REMOTE_ADDR="198.51.100.3"), garment, new_photo(3))

    usage = {cap.scope: cap for cap in quota.usage_today()}
    assert (usage["session"].used, usage["session"].at_limit, usage["session"].counters) == (
        2,
        1,
        2,
    )
    assert (usage["address"].used, usage["address"].percent) == (2, 20)
    assert (usage["guests"].used, usage["guests"].limit, usage["guests"].reached) == (3, 40, False)
    assert usage["user"].counters == 0
    with responses.RequestsMock() as provider:
        provider.get(
            "https://api.tryon.test" + contract.CREDITS_PATH,
            json={**contract.public_fields(), "data": {"credits": 10}},
        )
        page = admin_client.get(reverse(OVERVIEW)).content.decode()
    assert 'id="tryon-quota-guests"' in page and "3 (8 %)" in page
    assert 'id="tryon-guest-cap-reached"' not in page


def test_item1_a_refund_gives_back_every_counter_once(garment, no_throttle):
    guest = Client()
    job = TryOnJob.objects.get(pk=post_job(guest, garment).json()["id"])
    assert len(job.quota_key.split()) == 3  # the guest, the address, all guests
    assert set(DailyUsage.objects.values_list("count", flat=True)) == {1}

    job.status, job.error_code = "failed", "provider_unavailable"
    job.save()
    job_failed.send(sender=TryOnJob, job=job)
    job_failed.send(sender=TryOnJob, job=job)  # a second signal gives nothing more

    assert set(DailyUsage.objects.values_list("count", flat=True)) == {0}
    assert DailyUsage.objects.count() == 3


@pytest.mark.parametrize(
    "picks_model_photo, code",
    [
        (True, "task_failed"),  # the shop's photo: given back whatever the reason
        (False, "result_filtered"),  # a photo that sets the provider's filter off
    ],
)
def test_failed_try_ons_give_back_no_more_than_a_days_quota(
    picks_model_photo, code, settings, garment
):
    """A failure that is not the shopper's fault gives the try-on back, but the provider
    may have been paid for it: a try-on that fails every time was free to repeat."""
    settings.TRYON = {
        **settings.TRYON,
        "THROTTLE_RATE": None,
        "DAILY_QUOTA_GUEST": 2,
        "DAILY_QUOTA_ADDRESS": 3,
        "DAILY_QUOTA_ALL_GUESTS": 4,
    }
    model = ModelPhoto.objects.create(
        name="Ava",
        image=ContentFile(photo_bytes(), name="ava.jpg"),
        offered_to_shoppers=True,
    )
    guest = Client()
    started = 0
    for _attempt in range(10):
        if picks_model_photo:
            answer = guest.post(JOBS_URL, {"garment": garment.pk, "model_photo": model.pk})
        else:
            answer = post_job(guest, garment)
        if answer.status_code != 201:
            break
        started += 1
        job = TryOnJob.objects.get(pk=answer.json()["id"])
        job.status, job.error_code = "failed", code
        job.save()
        job_failed.send(sender=TryOnJob, job=job)

    # Two counted, two given back: the guest's quota twice over, then refused.
    assert started == 4
    assert_error(answer, 429, "quota_exceeded")
    assert quota.used(f"session:{job.session_key or job.shares.get().session_key}") == 2


def test_item1_a_refusal_by_one_cap_counts_against_none(garment, settings):
    settings.TRYON = {**settings.TRYON, "THROTTLE_RATE": None, "DAILY_QUOTA_ALL_GUESTS": 1}
    assert post_job(Client(), garment, new_photo(1)).status_code == 201
    assert_error(post_job(Client(), garment, new_photo(2)), 429, "guest_quota_exceeded")
    # The refused try-on's session and address counters were not moved.
    assert sorted(DailyUsage.objects.values_list("key", "count")) == sorted(
        [
            ("guests", 1),
            (quota.address_key("127.0.0.1"), 1),
            (TryOnJob.objects.get().quota_key.split()[0], 1),
            (quota.GUEST_CAP_NOTICE_KEY, 1),
        ]
    )


def test_item1_the_refusals_speak_french():
    with translation.override("fr"):
        assert "demain" in str(AddressQuotaExceeded(60).detail)
        assert "demain" in str(GuestQuotaExceeded(60).detail)


# Item 2: the result URL check -----------------------------------------------------


def _fetcher(**kwargs):
    return ResultFetcher(
        base_url="https://api.tryon.test", max_bytes=10_000, timeout=(2, 2), **kwargs
    )


@pytest.mark.parametrize(
    "template",
    [
        "http://127.0.0.1:{port}\\@api.tryon.test/img",  # the backslash of the report
        "http://api.tryon.test@127.0.0.1:{port}/img",  # userinfo
        "http://api.tryon.test:x@127.0.0.1:{port}/img",
        "http://127.0.0.1:{port}\t@api.tryon.test/img",  # a control character
        "http://127.0.0.1:{port} @api.tryon.test/img",  # whitespace
        "http://127.0.0.1:0{port}/img",  # a port with a leading zero
        "https://127.0.0.1:{port}/img",  # an untrusted, non-public address
        "https://2130706433:{port}/img",  # 127.0.0.1 as one number
        "https://0x7f.1:{port}/img",
        "https://%31%32%37.0.0.1:{port}/img",  # an escaped host
        "https://localhost:{port}/img",  # a name without a dot
        # IPv6 spellings of an internal IPv4 address that Python's own checks miss:
        "https://[64:ff9b::7f00:1]:{port}/img",  # NAT64 to 127.0.0.1
        "https://[64:ff9b::a00:5]:{port}/img",  # NAT64 to 10.0.0.5
        "https://[2002:a00:5::1]:{port}/img",  # 6to4 from 10.0.0.5
        "https://[::ffff:0:7f00:1]:{port}/img",  # IPv4-translated 127.0.0.1
        "https://[::7f00:1]:{port}/img",  # IPv4-compatible 127.0.0.1
    ],
)
def test_item2_an_ambiguous_or_internal_result_url_gets_no_connection(template, listener):
    url = template.format(port=listener.port)
    fetcher = _fetcher()
    session = fetcher.new_session()
    with pytest.raises(ResultURLForbidden):
        fetcher.fetch(url, session)
    session.close()
    assert listener.accepted == 0


def test_item2_through_an_egress_proxy_the_url_check_still_refuses(listener, monkeypatch):
    # The proxy would connect anywhere: the URL check is all there is.
    proxy = f"http://127.0.0.1:{listener.port}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    fetcher = _fetcher()
    session = fetcher.new_session()
    for url in (
        "http://127.0.0.1:8420\\@api.tryon.test/img",
        "https://results.example.com@10.0.0.5/img",
        "https://internal-cdn/img",
    ):
        with pytest.raises(ResultURLForbidden):
            fetcher.fetch(url, session)
    session.close()
    assert listener.accepted == 0


def test_item2_a_refused_address_is_never_connected_to(listener):
    checked = []

    def refuse(host, address):
        checked.append((host, address))
        raise ResultURLForbidden(f"{host} at {address} refused")

    session = EnvironmentCachingSession(PeerCheckingAdapter(refuse))
    with pytest.raises(ResultURLForbidden):
        session.send_direct("GET", f"http://127.0.0.1:{listener.port}/img", timeout=2)
    session.close()
    assert checked == [("127.0.0.1", "127.0.0.1")]
    assert listener.accepted == 0


def test_item2_the_url_fetched_is_the_one_checked():
    fetcher = _fetcher(resolver=lambda host, port, **kw: [(2, 1, 6, "", ("93.184.216.34", port))])
    assert (
        fetcher.check_url("HTTPS://CDN.Example.com/a/../r.png?sig=1#frag")
        == "https://cdn.example.com/r.png?sig=1"
    )


# Item 3: the API key is never shown -----------------------------------------------

SECRET = "sk-live-0123456789abcdef"


def test_item3_a_key_read_with_a_trailing_newline_is_sent_stripped(settings):
    settings.TRYON = {**settings.TRYON, "API_KEY": f"  {SECRET}\n"}
    assert not [m for m in run_checks() if m.id.startswith("django_tryon.E")]
    backend = get_backend()
    with responses.RequestsMock() as provider:
        provider.get(
            "https://api.tryon.test" + contract.CREDITS_PATH,
            json={**contract.public_fields(), "data": {"credits": 3}},
        )
        assert backend.credits().remaining == 3
        assert provider.calls[0].request.headers[contract.API_KEY_HEADER] == SECRET
    backend.close()


def test_item3_a_key_with_a_break_inside_is_a_check_error_that_does_not_show_it(settings):
    settings.TRYON = {**settings.TRYON, "API_KEY": f"{SECRET[:8]}\n{SECRET[8:]}"}
    errors = [m for m in run_checks() if m.id == "django_tryon.E041"]
    assert len(errors) == 1
    assert "line break at character 9" in errors[0].msg
    text = errors[0].msg + errors[0].hint
    assert SECRET[:8] not in text and SECRET[8:] not in text


def test_item3_a_provider_echoing_the_key_is_redacted_everywhere(
    settings, admin_client, caplog, make_job
):
    settings.TRYON = {**settings.TRYON, "API_KEY": SECRET}
    echo = contract.error_answer(400, "ERROR_INVALID_PARAMETER", f"bad header {SECRET!r}")
    with responses.RequestsMock() as provider:
        provider.get("https://api.tryon.test" + contract.CREDITS_PATH, status=400, json=echo)
        page = admin_client.get(reverse(OVERVIEW)).content.decode()
    assert SECRET not in page and "[redacted]" in page
    assert SECRET not in caplog.text

    # The worker's log and the job's fields.
    job = make_job()
    with responses.RequestsMock() as provider:
        provider.post(
            "https://api.tryon.test" + contract.SUBMIT_PATH,
            status=400,
            json=contract.error_answer(400, SECRET, f"key {SECRET} refused"),
        )
        with Worker(worker_id="t") as worker:
            worker.run_pass()
    job.refresh_from_db()
    assert job.status == "failed"
    stored = " ".join([job.error_message, job.provider_error_code, job.provider_request_id])
    assert SECRET not in stored and "[redacted]" in job.provider_error_code
    assert SECRET not in caplog.text


def test_item3_the_http_clients_own_error_quoting_the_key_is_redacted(settings):
    # The report's case: a key with a newline. The backend strips it when it is made;
    # before that, the HTTP client refused the header and quoted its value (Requests
    # itself from 2.32.5, http.client below it), and that text reached the admin.
    settings.TRYON = {**settings.TRYON, "API_KEY": SECRET + "\n"}
    backend = AILabBackend(base_url="https://api.tryon.test")
    assert backend.api_key == SECRET  # stripped when the backend is made
    clients_own_error = requests.exceptions.InvalidHeader(
        "Invalid leading whitespace, reserved character(s), or return character(s) "
        f"in header value: {SECRET + chr(10)!r}"
    )
    with responses.RequestsMock() as mocked, pytest.raises(ProviderConnectionError) as caught:
        mocked.get("https://api.tryon.test/api/common/query-credits", body=clients_own_error)
        backend.credits()
    assert SECRET not in str(caught.value)
    assert "InvalidHeader" in str(caught.value)


def test_item3_every_package_log_line_is_redacted(settings, caplog):
    settings.TRYON = {**settings.TRYON, "API_KEY": SECRET + "\n"}
    logger = get_logger("django_tryon.worker")
    with caplog.at_level(logging.INFO, logger="django_tryon"):
        logger.error("header %r refused", SECRET + "\n")
        try:
            raise ValueError(f"Invalid header value {SECRET!r}")
        except ValueError:
            logger.exception("unexpected")
    assert SECRET not in caplog.text
    assert "header '[redacted]' refused" in caplog.text
    assert redact(f"x {SECRET} y") == "x [redacted] y"


# Item 9: a planted guest session ---------------------------------------------------


def test_item9_a_planted_session_cookie_cannot_read_the_guests_try_on(garment, no_throttle):
    attacker = Client()
    post_job(attacker, garment, new_photo(1))  # the attacker's own session, with a try-on
    planted = attacker.cookies["sessionid"].value

    victim = Client()
    victim.cookies["sessionid"] = planted  # set from a sibling domain, say
    mine = post_job(victim, garment, new_photo(2)).json()

    assert victim.cookies["sessionid"].value != planted
    assert victim.get(job_url(mine["id"])).status_code == 200
    assert attacker.get(job_url(mine["id"])).status_code == 404
    # The planted session is gone altogether.
    fresh = Client()
    fresh.cookies["sessionid"] = planted
    assert fresh.get(job_url(mine["id"])).status_code == 404


def test_item9_a_guest_keeps_every_try_on_across_new_keys_and_at_sign_in(garment, no_throttle):
    guest = Client()
    first = post_job(guest, garment, new_photo(1)).json()["id"]
    key_after_first = guest.session.session_key
    second = post_job(guest, garment, new_photo(2)).json()["id"]

    assert guest.session.session_key != key_after_first
    for job_id in (first, second):
        assert guest.get(job_url(job_id)).status_code == 200
    # One guest, one quota counter, whatever the session's key.
    assert DailyUsage.objects.get(key__startswith="session:").count == 2
    assert guest.session[GUEST_SESSION_KEY] == TryOnJob.objects.get(pk=first).session_key

    user = get_user_model().objects.create_user("eve", password="pw")
    guest.login(username="eve", password="pw")
    assert set(TryOnJob.objects.filter(user=user).values_list("pk", flat=True)) == {
        TryOnJob.objects.get(pk=first).pk,
        TryOnJob.objects.get(pk=second).pk,
    }
    assert guest.get(job_url(second)).status_code == 200


def test_item9_reusing_a_job_changes_no_key(garment, no_throttle):
    guest = Client()
    post_job(guest, garment, new_photo(1))
    key = guest.session.session_key
    assert post_job(guest, garment, new_photo(1)).json()["reused"] is True
    assert guest.session.session_key == key


# Guest sessions kept in signed cookies ------------------------------------------

SIGNED_COOKIES = "django.contrib.sessions.backends.signed_cookies"


def test_guests_who_start_in_the_same_second_are_two_guests_with_signed_cookie_sessions(
    settings, garment, no_throttle, monkeypatch
):
    # A signed cookie session's key is its signed data, and every new guest's session
    # holds the same data: within one second, the same key.
    settings.SESSION_ENGINE = SIGNED_COOKIES
    monkeypatch.setattr(signing.TimestampSigner, "timestamp", lambda signer: "1xYVQl")
    first, second = Client(), Client()
    mine = post_job(first, garment, new_photo(1)).json()["id"]
    theirs = post_job(second, garment, new_photo(2)).json()["id"]

    assert first.get(job_url(mine)).status_code == 200
    assert first.get(job_url(theirs)).status_code == 404
    assert second.get(job_url(mine)).status_code == 404
    # A guest fits the column (PostgreSQL refuses a longer value: an HTTP 500).
    assert all(0 < len(job.session_key) <= 40 for job in TryOnJob.objects.all())


def test_signed_cookie_sessions_are_warned_about(settings):
    settings.SESSION_ENGINE = SIGNED_COOKIES
    warnings = [m for m in run_checks() if m.id == "django_tryon.W042"]
    assert len(warnings) == 1 and "planted" in warnings[0].msg
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    assert "django_tryon.W042" not in [m.id for m in run_checks()]


# Caches ---------------------------------------------------------------------------


def test_no_cache_keeps_a_shoppers_try_on(garment, no_throttle):
    """A shared cache (a CDN that ignores ``Vary``, or caches what carries no
    ``Cache-Control``) or the browser's own would show the job, its result's
    address among it, to the next visitor or after the shopper's erasure."""
    shopper = Client()
    created = post_job(shopper, garment, new_photo(1))
    job_id = created.json()["id"]
    answers = [
        created,
        shopper.get(job_url(job_id)),
        shopper.head(job_url(job_id)),
        Client().get(job_url(job_id)),  # someone else's: the 404
        shopper.delete(job_url(job_id)),
    ]
    for answer in answers:
        directives = {part.strip() for part in answer.get("Cache-Control", "").split(",")}
        assert {"private", "no-store"} <= directives, (answer.status_code, directives)


# Item 4: concurrent shoppers on SQLite -------------------------------------------

SQLITE = "django.db.backends.sqlite3"


@pytest.mark.parametrize(
    "options, warned",
    [
        ({}, True),
        ({"timeout": 20}, True),
        ({"transaction_mode": "DEFERRED"}, True),
        ({"transaction_mode": "IMMEDIATE"}, False),
        ({"transaction_mode": "immediate"}, False),
        ({"transaction_mode": "EXCLUSIVE"}, False),
    ],
)
def test_item4_sqlite_without_immediate_mode_is_warned(options, warned):
    databases = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": "/srv/shop.db",
            "OPTIONS": options,
        },
        "memory": {"ENGINE": SQLITE, "NAME": ":memory:"},
        "pg": {"ENGINE": "django.db.backends.postgresql", "NAME": "shop"},
    }
    found = sqlite_mode_warnings(databases)
    assert [w.id for w in found] == (["django_tryon.W040"] if warned else [])
    if warned:
        assert "'default'" in found[0].msg and '"transaction_mode": "IMMEDIATE"' in found[0].hint


CONCURRENT_GUESTS = 16
SERVER_OPTIONS = ["--noreload", "--skip-checks"]


def _run(args, env):
    done = subprocess.run(
        [sys.executable, "-m", "django", *args], env=env, cwd=ROOT, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    return done.stdout.decode()


@contextlib.contextmanager
def _shop_with_a_signed_in_shopper(tmp_path, **tryon):
    """A real threaded server on a SQLite file, as the example shop runs, in SQLite's
    default (deferred) transaction mode, with a garment and a signed-in shopper's
    session: yields ``(base URL, garment id, session key)``. What the server wrote is
    in ``tmp_path / "server.log"`` once it stopped."""
    env = {key: value for key, value in os.environ.items() if key != "TRYON_TEST_DATABASE_URL"}
    settings = {"API_KEY": "k", "BASE_URL": "https://api.tryon.test", "THROTTLE_RATE": None}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.e2e.settings",
        PYTHONPATH=str(ROOT),
        TRYON_E2E_DB_NAME=str(tmp_path / "shop.sqlite3"),
        TRYON_E2E_MEDIA_ROOT=str(tmp_path / "media"),
        TRYON_E2E_TRYON=json.dumps({**settings, **tryon}),
    )
    created = _run(["shell", "-c", SHOP_WITH_A_SIGNED_IN_SHOPPER], env)
    garment_id, session_key = created.strip().splitlines()[-1].split()
    port = free_port()
    with open(tmp_path / "server.log", "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", *SERVER_OPTIONS],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port)
            yield f"http://127.0.0.1:{port}", garment_id, session_key
        finally:
            server.terminate()
            server.wait(timeout=30)


def test_item4_concurrent_shoppers_on_a_sqlite_file_get_no_500(tmp_path):
    # The shopper's path must not need the IMMEDIATE mode the example shop sets for
    # the worker's sake.
    with _shop_with_a_signed_in_shopper(tmp_path) as (base, garment_id, session_key):
        photos = [photo_bytes(color=(n * 15, 90, 200)) for n in range(CONCURRENT_GUESTS)]
        guests = post_at_once(base, garment_id, photos)
        # A double click: the same try-on, from the same shopper, six times at once.
        twins = post_at_once(base, garment_id, [photos[0]] * 6, {"sessionid": session_key})
    output = (tmp_path / "server.log").read_text(errors="replace")
    assert guests == [201] * CONCURRENT_GUESTS, output
    assert sorted(twins) == [200] * 5 + [201], output  # started once, paid once
    assert "Traceback" not in output


def test_a_double_click_is_started_once_when_the_shopper_has_no_daily_limit(tmp_path):
    # The twins of a try-on wait for each other on the row of a counter they both
    # count: a shopper with no daily limit counted nothing, so nothing held them.
    with _shop_with_a_signed_in_shopper(tmp_path, DAILY_QUOTA_USER=None) as (
        base,
        garment_id,
        session_key,
    ):
        twins = post_at_once(base, garment_id, [photo_bytes()] * 10, {"sessionid": session_key})
    output = (tmp_path / "server.log").read_text(errors="replace")
    assert sorted(twins) == [200] * 9 + [201], output  # started once, paid once
    assert "Traceback" not in output


SHOP_WITH_A_SIGNED_IN_SHOPPER = """
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.core.files.base import ContentFile
from django_tryon.models import Garment
from tests.support.images import make_image_bytes
garment = Garment.objects.create(
    name="Shirt", clothes_type="upper_body",
    image=ContentFile(make_image_bytes((500, 500)), name="s.jpg"),
)
user = get_user_model().objects.create_user("ana")
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.save()
print(garment.pk, session.session_key)
"""


# Item 5: the decompression memory of intake ------------------------------------

# Runs one intake in a fresh process and prints how far its resident memory rose
# above what it was just before: Pillow's and libpng's buffers are counted, which
# tracemalloc would not see.
INTAKE_PEAK = """
import io, json, sys
from pathlib import Path
import django
django.setup()
from django_tryon.images import normalise_image

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

data = Path(sys.argv[1]).read_bytes()
Path("/proc/self/clear_refs").write_text("5")  # the high-water mark restarts here
before = status("VmRSS")
result = normalise_image(io.BytesIO(data))
print(json.dumps({"growth": status("VmHWM") - before, "size": [result.width, result.height]}))
"""


def test_item5_a_95_kb_16_bit_grey_png_is_decoded_within_its_bound(monkeypatch, tmp_path):
    """7000 x 7000 16-bit grey, under the pixel cap: 98 MB of 16-bit pixels, and 465 MB
    with the copies its conversion made. It is now decoded straight to 8-bit grey: the
    decoder never asks for the 16-bit picture, and the whole intake stays under both
    that size and INTAKE_MAX_DECODED_BYTES."""
    data = grey16_png(7000)
    sixteen_bit_bytes = 7000 * 7000 * 2
    assert len(data) < 150 * 1024

    asked = []
    new = Image.core.new

    def spy(mode, size):
        asked.append((mode, size))
        return new(mode, size)

    monkeypatch.setattr(Image.core, "new", spy)
    result = normalise_image(io.BytesIO(data))
    monkeypatch.undo()
    assert (result.width, result.height) == (2048, 2048)
    assert asked == [("L", (7000, 7000))]  # one byte a pixel: 49 MB, not 98

    photo = tmp_path / "grey16.png"
    photo.write_bytes(data)
    child = subprocess.run(
        [sys.executable, "-c", INTAKE_PEAK, str(photo)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        check=True,
    )
    peak = json.loads(child.stdout.strip().splitlines()[-1])
    assert peak["size"] == [2048, 2048]
    assert peak["growth"] < sixteen_bit_bytes
    assert peak["growth"] < tryon_settings.INTAKE_MAX_DECODED_BYTES


# Item 7: an answer that cannot be read is in doubt -------------------------------

SUBMIT_URL = "https://api.tryon.test" + contract.SUBMIT_PATH
QUERY_URL = "https://api.tryon.test" + contract.QUERY_PATH
DEEPLY_NESTED = b"[" * 200_000 + b"]" * 200_000


@pytest.mark.parametrize(
    "body",
    [
        DEEPLY_NESTED,  # RecursionError in the JSON parser
        b'{"task_id": "' + b"x" * (2 * 1024 * 1024) + b'"}',  # over the answer cap
        b'{"task_id": "t-1", "error_code": 0, "x": "\xff\xfe"}',  # not UTF-8
        b'{"task_id": 1' + b"0" * 5000 + b"}",  # a number Python refuses to read
    ],
    ids=["nested", "huge", "encoding", "digits"],
)
def test_item7_an_unreadable_answer_to_a_submit_is_never_submitted_again(
    body, make_job, settings, caplog
):
    settings.TRYON = {**settings.TRYON, "RETRY_BACKOFF": 0, "MAX_ATTEMPTS": 5}
    job = make_job()
    with responses.RequestsMock() as provider:
        provider.post(SUBMIT_URL, body=body, content_type="application/json")
        with Worker(worker_id="t") as worker:
            for _ in range(3):
                worker.run_pass()
        assert len(provider.calls) == 1
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "submit_interrupted")
    assert "may have reached the provider" in caplog.text


def test_item7_an_unreadable_answer_to_a_query_is_asked_again(make_job, settings):
    settings.TRYON = {**settings.TRYON, "RETRY_BACKOFF": 0}
    job = make_job(status="queued", provider_task_id="task-9")
    with responses.RequestsMock() as provider:
        provider.get(QUERY_URL, body=DEEPLY_NESTED, content_type="application/json")
        with Worker(worker_id="t") as worker:
            worker.run_pass()
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("queued", 1)  # retried, nothing is paid twice


def test_item7_any_fault_of_a_backend_during_a_submit_is_in_doubt(make_job, settings):
    class ParsesBadly(AILabBackend):
        def submit(self, request):
            self.calls = getattr(self, "calls", 0) + 1
            raise KeyError("task_id")  # a backend's own bug, after its request left

    job = make_job()
    backend = ParsesBadly(api_key="k", base_url="https://api.tryon.test")
    with Worker(worker_id="t", backend=backend) as worker:
        worker.run_pass()
        worker.run_pass()
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "submit_interrupted")
    assert backend.calls == 1


def test_item7_an_answer_is_read_up_to_its_cap_only():
    with responses.RequestsMock() as provider:
        provider.get("https://api.tryon.test/a", body=b'{"a": 1}' + b" " * 2000)
        provider.get("https://api.tryon.test/b", body=b'{"b": 2}')
        session = requests.Session()
        big = session.get("https://api.tryon.test/a", stream=True)
        with pytest.raises(InvalidResponseError, match="over 1000 bytes") as caught:
            read_json_answer(big, provider="p", in_doubt=True, max_bytes=1000)
        assert caught.value.in_doubt is True
        small = session.get("https://api.tryon.test/b", stream=True)
        assert read_json_answer(small, provider="p", in_doubt=False, max_bytes=1000) == {"b": 2}
        assert small.json() == {"b": 2}  # kept on the response


# Item 6: every result download has a total deadline --------------------------------


def dripping_result_host(phase):
    """A result host that sends a picture a byte at a time (its headers or its body)."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n"
    return DrippingServer(head, result_png(), phase)


@pytest.mark.parametrize("phase", ["body", "headers"])
def test_item6_a_download_dripping_within_the_read_timeout_is_cut_off_at_its_deadline(phase):
    slow = dripping_result_host(phase)
    fetcher = ResultFetcher(base_url=slow.url, max_bytes=10**6, timeout=(5, 10), total_timeout=1.0)
    session = fetcher.new_session()
    started = time.monotonic()
    try:
        with pytest.raises(ResultDownloadError, match="longer than 1 s in all"):
            fetcher.fetch(f"{slow.url}/results/r.png", session)
    finally:
        session.close()
        slow.stop()
    # Cut off near the deadline, not when a read timed out (10 s) or the body ended.
    assert time.monotonic() - started < 8


def test_item6_the_job_of_a_dripping_result_ends_result_unavailable(make_job, settings, caplog):
    slow = dripping_result_host("body")
    settings.TRYON = {
        **settings.TRYON,
        "RESULT_HOSTS": ["127.0.0.1"],
        "RESULT_DOWNLOAD_TIMEOUT": 1,
        "READ_TIMEOUT": 10,
        "MAX_ATTEMPTS": 1,
    }
    job = make_job(status="queued", provider_task_id="task-1")
    try:
        with responses.RequestsMock(passthru_prefixes=(slow.url,)) as provider:
            provider.get(QUERY_URL, json=contract.query_answer(2, f"{slow.url}/r.png"))
            with Worker(worker_id="t") as worker:
                worker.run_pass()
    finally:
        slow.stop()
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "result_unavailable")
    assert "RESULT_DOWNLOAD_TIMEOUT" in caplog.text  # the reason, for staff


def test_sibling_of_item6_a_name_server_that_never_answers_is_cut_off_at_the_deadline():
    # Whoever runs the result host's domain runs its name server: one that never
    # answers held the download for the resolver's own timeouts, past the deadline.
    asked, answer, answered = threading.Event(), threading.Event(), threading.Event()

    def silent_resolver(host, port, *args, **kwargs):
        asked.set()
        answer.wait(30)  # a failure, not a hang, if nothing gives up on it
        answered.set()
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    fetcher = ResultFetcher(
        base_url="https://api.tryon.test",
        max_bytes=1000,
        timeout=(5, 10),
        total_timeout=0.5,
        resolver=silent_resolver,
    )
    session = fetcher.new_session()
    try:
        with pytest.raises(ResultDownloadError, match=r"longer than 0\.5 s in all"):
            fetcher.fetch("https://results.example.com/r.png", session)
        # Given up while the lookup still waits for its answer.
        assert asked.is_set() and not answered.is_set()
    finally:
        answer.set()
        session.close()


def test_sibling_of_item6_a_lookup_under_a_deadline_answers_as_the_resolver_does():
    def resolver(host, port, *args, **kwargs):
        if host == "missing.example":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    with deadline(5) as running:
        assert lookup(resolver, "cdn.example", 443)[0][4] == ("93.184.216.34", 443)
        with pytest.raises(socket.gaierror, match="not known"):
            lookup(resolver, "missing.example", 443)
    assert not running.expired
    # Without a deadline, or for an address (no name server is asked), the resolver
    # is called as it is, on this thread.
    here = threading.current_thread()
    assert lookup(lambda *args: threading.current_thread(), "cdn.example", 443) is here
    with deadline(5):
        for address in ("127.0.0.1", "::1", "fe80::1%eth0"):
            assert lookup(lambda *args: threading.current_thread(), address, 443) is here
        assert lookup(lambda *args: threading.current_thread(), "cdn.example", 443) is not here


# Item 8: the sandbox answers its developer only -----------------------------------


JSON_TYPE = "Content-Type: application/json"


@pytest.fixture
def sandbox():
    with SandboxServer(result_mode="plain", allowed_hosts=["sandbox.internal"]) as running:
        yield running


def _raw(sandbox, request):
    """Send ``request`` bytes as they are (a browser's, a rebinding page's) and
    return the answer's status and body."""
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _post_control(sandbox, *, headers, body=b'{"credits": 0}'):
    lines = ["POST /_sandbox/control HTTP/1.1", f"Content-Length: {len(body)}", *headers]
    return _raw(sandbox, ("\r\n".join(lines) + "\r\nConnection: close\r\n\r\n").encode() + body)


@pytest.mark.parametrize(
    "headers, status",
    [
        # A form or fetch() of a page elsewhere: a simple request, no preflight.
        (["Host: 127.0.0.1", "Origin: https://evil.example", "Content-Type: text/plain"], 403),
        (
            ["Host: 127.0.0.1", "Origin: https://evil.example", "Content-Type: application/json"],
            403,
        ),
        (["Host: 127.0.0.1", "Sec-Fetch-Site: cross-site", "Content-Type: text/plain"], 403),
        (["Host: 127.0.0.1", "Sec-Fetch-Site: same-site", "Content-Type: application/json"], 403),
        (["Host: 127.0.0.1", "Content-Type: text/plain"], 415),
        (["Host: 127.0.0.1", "Content-Type: application/x-www-form-urlencoded"], 415),
        # A page whose own name was rebound to 127.0.0.1.
        (["Host: evil.example:8765", "Content-Type: application/json"], 403),
        (
            ["Host: evil.example", "Origin: http://evil.example", "Content-Type: application/json"],
            403,
        ),
    ],
)
def test_item8_the_control_endpoint_refuses_requests_from_other_sites(sandbox, headers, status):
    assert _post_control(sandbox, headers=headers)[0] == status
    assert sandbox.store.credits == 1_000_000  # unchanged
    assert (
        _raw(
            sandbox,
            b"POST /_sandbox/reset HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Origin: https://evil.example\r\nContent-Length: 0\r\n\r\n",
        )[0]
        == 403
    )


@pytest.mark.parametrize(
    "headers",
    [
        ["Host: 127.0.0.1", "Content-Type: application/json"],  # curl, a script
        ["Host: localhost", "Content-Type: application/json; charset=utf-8"],
        ["Host: sandbox.internal", "Content-Type: application/json"],  # --allowed-host
        [
            "Host: 127.0.0.1",
            "Origin: http://127.0.0.1:{port}",
            "Sec-Fetch-Site: same-origin",
            "Content-Type: application/json",
        ],
    ],
)
def test_item8_the_developers_own_changes_still_work(sandbox, headers):
    headers = [header.format(port=sandbox.port) for header in headers]
    status, body = _post_control(sandbox, headers=headers)
    assert status == 200, body
    assert sandbox.store.credits == 0


@pytest.mark.parametrize(
    "target",
    [
        "GET /_sandbox/control",
        "GET /api/common/query-credits",
        f"GET {contract.QUERY_PATH}?task_id=t-1",
        "GET /results/abc.jpg",
    ],
)
def test_item8_a_rebound_name_reaches_no_endpoint(sandbox, target):
    request = f"{target} HTTP/1.1\r\nHost: attacker.example\r\n{contract.API_KEY_HEADER}: k\r\n"
    status, body = _raw(sandbox, (request + "Connection: close\r\n\r\n").encode())
    assert status == 403
    assert b"does not answer to the host" in body
    # The same request by the sandbox's own name is answered.
    own = request.replace("attacker.example", f"127.0.0.1:{sandbox.port}")
    assert _raw(sandbox, (own + "Connection: close\r\n\r\n").encode())[0] != 403


# Siblings -------------------------------------------------------------------------


def test_sibling_of_item2_base_urls_host_is_read_as_the_client_reads_it():
    # An operator's BASE_URL with a backslash: urlsplit would trust one host, the
    # client would connect to another. The trusted host is the one connected to.
    fetcher = ResultFetcher(
        base_url="http://127.0.0.1:8420\\@api.tryon.test/", max_bytes=10, timeout=1
    )
    assert fetcher.trusted_hosts == {"127.0.0.1"}


def test_sibling_of_item7_the_sandbox_control_refuses_nested_json_with_a_400(sandbox):
    body = b"[" * 30_000 + b"]" * 30_000
    status, answer = _post_control(sandbox, headers=["Host: 127.0.0.1", JSON_TYPE], body=body)
    assert status == 400 and b"nested too deep" in answer


def test_item6_a_deadline_ended_in_time_leaves_its_connections_alone():
    kept, peer = socket.socketpair()
    late, late_peer = socket.socketpair()
    with deadline(0.05) as in_time:
        watch_socket(kept)
    with deadline(0.05) as overrun:
        watch_socket(late)
        assert late.recv(1) == b""  # woken by the shutdown at the deadline
    assert (in_time.expired, overrun.expired) == (False, True)
    time.sleep(0.2)  # well past the first deadline's time too
    peer.sendall(b"x")
    assert kept.recv(1) == b"x"  # still open: a kept-alive connection stays usable
    for each in (kept, peer, late, late_peer):
        each.close()


def test_item6_a_connection_made_under_an_inner_deadline_is_held_to_the_outer_one_too():
    # A provider's token asked for during a call: the call's deadline still holds.
    sock, peer = socket.socketpair()
    sock.settimeout(10)  # a failure, not a hang, if nothing shuts it
    with deadline(0.05) as outer, deadline(60) as inner:
        watch_socket(sock)
        assert sock.recv(1) == b""  # woken by the outer deadline's shutdown
    assert (outer.expired, inner.expired) == (True, False)
    for each in (sock, peer):
        each.close()


def test_item1_the_overview_says_none_for_a_cap_turned_off(settings, admin_client):
    settings.TRYON = {**settings.TRYON, "DAILY_QUOTA_USER": None}
    user = get_user_model().objects.create_user("fay")
    DailyUsage.objects.create(key=f"user:{user.pk}", day=timezone.localdate(), count=30)
    usage = {cap.scope: cap for cap in quota.usage_today()}
    assert (usage["user"].used, usage["user"].at_limit, usage["user"].percent) == (30, 0, None)
    with responses.RequestsMock() as provider:
        provider.get(
            "https://api.tryon.test" + contract.CREDITS_PATH,
            json={**contract.public_fields(), "data": {"credits": 10}},
        )
        page = admin_client.get(reverse(OVERVIEW)).content.decode()
    row = page.split('id="tryon-quota-user"')[1].split("</tr>")[0]
    assert "none" in row and "30" in row and "%" not in row


def test_sibling_of_item3_tryon_check_lines_never_show_the_key(settings):
    settings.TRYON = {**settings.TRYON, "API_KEY": SECRET}
    finding = diagnostics.Finding("provider", diagnostics.FAILED, f"refused header {SECRET!r}")
    assert SECRET not in finding.message and "[redacted]" in finding.message
    assert SECRET not in json.dumps(finding.as_dict())


# Item 6: one slow download stops the worker ------------------------------------------


class TricklingResult:
    """A result URL that sends one byte at a time until the test releases it."""

    def __init__(self, body):
        self.body = body
        self.serving = threading.Event()  # a download has started
        self.release = threading.Event()  # the test lets the rest go
        self.sent = 0
        trickle = self

        class Handler(QuietHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(trickle.body)))
                self.end_headers()
                trickle.serving.set()
                # Less than the whole picture until released, a byte at a time;
                # then, at the latest after a minute, the rest.
                while not trickle.release.wait(0.05) and trickle.sent < len(trickle.body) - 1:
                    self._write(trickle.body[trickle.sent : trickle.sent + 1])
                trickle.release.wait(60)
                self._write(trickle.body[trickle.sent :])

            def _write(self, chunk):
                self.wfile.write(chunk)
                self.wfile.flush()
                trickle.sent += len(chunk)

        self.server = LoopbackServer(Handler)
        self.url = self.server.url

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc_info):
        self.release.set()
        self.server.stop()


def test_item6_worker_takes_new_jobs_while_a_slow_download_is_served(settings, provider, make_job):
    settings.TRYON = {
        "API_KEY": "test-key",
        "BASE_URL": provider.url,
        "POLL_INTERVAL": 600,  # the new job is not queried again within the test
        "IDLE_INTERVAL": 0.05,
        "RETRY_BACKOFF": 0,
        "CONCURRENCY": 2,
        "READ_TIMEOUT": 30,
    }
    body = result_png()
    with TricklingResult(body) as trickle, Worker(worker_id="w") as worker:
        slow = make_job(status="processing", provider_task_id="slow", submitted_at=timezone.now())
        provider.script_query("slow", ("done", f"{trickle.url}/slow.png"))
        result = in_thread(worker.run_pass)
        try:
            assert trickle.serving.wait(30), "the slow download never started"
            new = make_job()  # a shopper's new try-on, while the download trickles
            wait_for(
                lambda: TryOnJob.objects.filter(pk=new.pk, status="queued").exists(),
                timeout=30,
                what="the new job at the provider",
            )
            # Still being served: the pass did not wait for the slow call to end.
            assert not trickle.release.is_set() and trickle.sent < len(body)
        finally:
            trickle.release.set()
            report = result(timeout=60)
    assert (report.claimed, report.submitted, report.succeeded) == (2, 1, 1)
    assert TryOnJob.objects.get(pk=slow.pk).status == "succeeded"
    new = TryOnJob.objects.get(pk=new.pk)
    assert (new.status, new.lease_owner) == ("queued", "")
    assert len(provider.submits) == 1
