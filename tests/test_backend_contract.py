"""One contract, every backend: each against a loopback fake of its provider's protocol.

The same situations (a task made, in flight, done, failed; the photo refused;
the key refused; slow down; out of credits; the provider down; an answer lost
or unreadable; a delivery pushed back) must end in the same outcome whatever the
provider, so the worker, the quota and the shopper see one behaviour. Each fake
speaks its provider's documented words (see :mod:`tests.support.contract`). Providers
differ in shape, not in outcome: Vertex AI answers the submit with the picture
(nothing to poll), fal and FASHN push their end, fal signs what it pushes.
"""

import socket
import time

import pytest
from django.test import RequestFactory
from django.utils.module_loading import import_string

from django_tryon.backends import base, fal_signature
from django_tryon.backends.fal_signature import forget_key_sets
from tests.support import contract
from tests.support.fake_provider import DROP, FakeProvider
from tests.support.google_credentials import service_account_file

KEY = "contract-key-0123456789"

PERSON = base.ImageInput(b"\xff\xd8\xff\xe0person-bytes", "person.jpg", "image/jpeg")
GARMENT = base.ImageInput(b"\x89PNG\r\n\x1a\ngarment-bytes", "garment.png", "image/png")

ALL = contract.PROTOCOLS
POLLING = [protocol for protocol in ALL if protocol.polls]
WITH_CREDITS = [protocol for protocol in ALL if protocol.reports_credits]
WITHOUT_CREDITS = [protocol for protocol in ALL if not protocol.reports_credits]
WITH_KEYS = [protocol for protocol in ALL if protocol.uses_api_key]
REFUSING_PHOTOS = [protocol for protocol in ALL if hasattr(protocol, "photo_refused")]
PUSHING = contract.PUSH_PROTOCOLS
SIGNING = [protocol for protocol in PUSHING if protocol.signs_deliveries]


def over(protocols):
    return pytest.mark.parametrize("protocol", protocols, ids=lambda protocol: protocol.name)


@pytest.fixture
def provider(protocol):
    provider = FakeProvider(protocol).start()
    yield provider
    provider.stop()


@pytest.fixture(autouse=True)
def credentials(request, monkeypatch, tmp_path):
    """Vertex AI's credentials: a service account's key file whose token endpoint is
    the fake's (every test that has a provider); fal's kept keys forgotten."""
    forget_key_sets()
    if "provider" in request.fixturenames:
        provider = request.getfixturevalue("provider")
        key_file = service_account_file(
            tmp_path / "service-account.json",
            token_uri=provider.url + contract.VERTEX_TOKEN_PATH,
            project_id=contract.VERTEX_PROJECT,
        )
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    yield
    forget_key_sets()


def make_backend(protocol, url, *, options_url=None, api_key=KEY, **kwargs):
    return import_string(protocol.backend)(
        api_key=api_key,
        base_url=url,
        options=protocol.backend_options(options_url or url),
        **kwargs,
    )


@pytest.fixture
def backend(protocol, provider):
    backend = make_backend(protocol, provider.url, read_timeout=5)
    yield backend
    backend.close()


def try_on(clothes_type="lower_body"):
    return base.TryOnRequest(person_image=PERSON, garment_image=GARMENT, clothes_type=clothes_type)


def credential(protocol):
    """What the provider must receive as the shop's credentials."""
    return KEY if protocol.uses_api_key else contract.VERTEX_ACCESS_TOKEN


def outcome(backend, provider, protocol, answer):
    """The error a photo refusal ends in: raised by the submit, or the failed state's."""
    if protocol.refuses_photos_at_submit:
        provider.script_submit(answer)
        with pytest.raises(base.TryOnError) as raised:
            backend.submit(try_on())
        return raised.value
    provider.script_query("T-1", answer)
    state = backend.query("T-1")
    assert state.status == base.FAILED
    return state.error


# A task's life ------------------------------------------------------------------


@over(ALL)
@pytest.mark.parametrize("clothes_type", ["upper_body", "lower_body", "full_body"])
def test_a_submit_carries_the_credentials_both_images_and_the_clothes_type(
    backend, provider, protocol, clothes_type
):
    submission = backend.submit(try_on(clothes_type))

    headers, body = provider.submits[0]
    assert protocol.api_key(headers) == credential(protocol)
    person, garment, sent_type = protocol.images_sent(headers, body)
    assert (person, garment) == (PERSON.content, GARMENT.content)
    assert sent_type in (clothes_type, None)  # None: the provider reads it from the picture
    if protocol.polls:
        assert submission.task_id == "task-1"
        assert submission.state is None
    else:  # synchronous: the answer is the picture
        assert submission.task_id
        assert submission.state.status == base.SUCCEEDED
        assert submission.state.result_content == protocol.picture


@over(POLLING)
def test_a_task_in_flight_then_done(backend, provider, protocol):
    provider.script_query(
        "T-1", protocol.in_flight("T-1"), ("done", "https://cdn.example.com/r.png")
    )

    first = backend.query("T-1")
    assert first.status in (base.QUEUED, base.PROCESSING)
    assert not first.is_final
    done = backend.query("T-1")
    assert done.status == base.SUCCEEDED
    assert done.result_url == "https://cdn.example.com/r.png"
    assert provider.queries == ["T-1", "T-1"]


@over(POLLING)
def test_a_task_the_provider_could_not_finish_fails_through_no_fault_of_the_shopper(
    backend, provider, protocol
):
    provider.script_query("T-1", protocol.task_failed("T-1"))
    state = backend.query("T-1")
    assert state.status == base.FAILED
    assert isinstance(state.error, base.TaskFailedError)
    assert state.error.job_error_code == "task_failed"
    assert not state.error.shopper_fault
    assert state.error.provider == protocol.name


@over(REFUSING_PHOTOS)
def test_a_photo_without_a_person_is_the_shoppers_to_fix(backend, provider, protocol):
    error = outcome(backend, provider, protocol, protocol.photo_refused("T-1"))
    assert isinstance(error, base.InvalidPhotoError)
    assert error.shopper_fault
    assert not error.transient


@over(WITH_CREDITS)
def test_credits(backend, provider, protocol):
    provider.credits = 41
    assert backend.credits().remaining == 41


@over(WITHOUT_CREDITS)
def test_a_provider_that_cannot_tell_its_balance_says_so_without_a_call(
    backend, provider, protocol
):
    assert backend.credits() is None
    assert provider.others == [] and provider.submits == []


# Errors before a task exists ------------------------------------------------------

API_ERROR_OUTCOMES = [
    ("bad_request", base.RequestRejectedError, "request_rejected", False),
    ("bad_key", base.ConfigurationError, "configuration", False),
    ("rate_limited", base.RateLimitedError, "provider_unavailable", True),
    ("out_of_credits", base.OutOfCreditsError, "out_of_credits", False),
    ("unavailable", base.ProviderUnavailableError, "provider_unavailable", True),
]


@over(ALL)
@pytest.mark.parametrize(
    ("kind", "error_class", "job_code", "transient"),
    API_ERROR_OUTCOMES,
    ids=[row[0] for row in API_ERROR_OUTCOMES],
)
def test_errors_before_a_task_end_alike_on_every_provider(
    backend, provider, protocol, kind, error_class, job_code, transient
):
    provider.script_submit(protocol.api_error(kind))
    with pytest.raises(error_class) as raised:
        backend.submit(try_on())
    error = raised.value
    assert error.job_error_code == job_code
    assert error.transient is transient
    assert not error.shopper_fault
    assert not error.in_doubt  # the provider said no: nothing was made
    assert error.provider == protocol.name
    assert error.status_code == protocol.api_error(kind)[0]
    assert KEY not in str(error)


@over(ALL)
def test_a_rate_limit_says_when_to_come_back(backend, provider, protocol):
    status, answer = protocol.api_error("rate_limited")
    provider.script_submit((status, answer, {"Retry-After": "7"}))
    with pytest.raises(base.RateLimitedError) as raised:
        backend.submit(try_on())
    assert raised.value.retry_after == 7.0


@over(ALL)
def test_the_configuration_error_is_outside_the_retried_hierarchy(backend, provider, protocol):
    provider.script_submit(protocol.api_error("bad_key"))
    with pytest.raises(base.ConfigurationError) as raised:
        backend.submit(try_on())
    assert not isinstance(raised.value, base.TryOnError)


# Answers lost or unreadable: a submit that may have made a task is in doubt -------------

UNREADABLE = {
    "dropped": DROP,
    "not json": (200, b"<html>OK</html>"),
    "a json list": (200, b"[1, 2]"),
    "nested too deep": (200, b"[" * 100_000 + b"]" * 100_000),
    "over the size cap": "over the cap",  # the backend's own cap (see over_cap)
    "not UTF-8": (200, b'{"id": "t-1", "task_id": "t-1", "x": "\xff\xfe"}'),
    "too many digits": (200, b'{"id": 1' + b"0" * 5000 + b"}"),
    "a gateway's page": (502, b"<html>Bad gateway</html>"),
}


def over_cap(answer, backend):
    """The answer as scripted: one byte over the backend's cap where the cap is asked for
    (Vertex AI's answers carry the picture: its cap is larger than the others')."""
    if answer != "over the cap":
        return answer
    return (200, b'{"pad": "' + b"x" * backend.max_answer_bytes + b'"}')


@over(ALL)
@pytest.mark.parametrize("answer", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_a_submit_whose_answer_cannot_be_read_is_in_doubt(backend, provider, answer):
    provider.script_submit(over_cap(answer, backend))
    with pytest.raises(base.TransientError) as raised:
        backend.submit(try_on())
    assert raised.value.in_doubt
    assert len(provider.submits) == 1


@over(POLLING)
@pytest.mark.parametrize("answer", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_a_query_whose_answer_cannot_be_read_is_retried_and_never_in_doubt(
    backend, provider, answer
):
    provider.script_query("T-1", over_cap(answer, backend))
    with pytest.raises(base.TransientError) as raised:
        backend.query("T-1")
    assert not raised.value.in_doubt


@over(ALL)
def test_a_submit_accepted_without_a_task_id_or_picture_is_in_doubt(backend, provider, protocol):
    status, answer = protocol.submitted("")
    provider.script_submit((status, answer))
    with pytest.raises(base.InvalidResponseError) as raised:
        backend.submit(try_on())
    assert raised.value.in_doubt


@over(ALL)
def test_a_refused_connection_sent_nothing_and_names_the_address_tried(protocol, provider):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    url = f"http://user:password@127.0.0.1:{port}"
    backend = make_backend(protocol, url, options_url=provider.url)
    try:
        with pytest.raises(base.ProviderConnectionError) as raised:
            backend.submit(try_on())
    finally:
        backend.close()
    assert not raised.value.in_doubt
    assert f"127.0.0.1:{port}/" in str(raised.value)
    assert "password" not in str(raised.value)
    assert KEY not in str(raised.value)


@over(ALL)
def test_a_redirect_is_refused_and_the_credentials_never_follow_it(backend, provider, protocol):
    redirect = (302, b"", {"Location": f"{provider.url}/elsewhere"})
    if protocol.polls:
        provider.script_query("T-1", redirect)
        call = lambda: backend.query("T-1")  # noqa: E731
    else:
        provider.script_submit(redirect)
        call = lambda: backend.submit(try_on())  # noqa: E731
    with pytest.raises(base.RequestRejectedError) as raised:
        call()
    assert raised.value.status_code == 302
    assert provider.others == []  # nothing went to the redirect's target


@over(WITH_KEYS)
def test_a_key_with_a_line_break_never_shows_in_an_error(protocol, provider):
    backend = make_backend(protocol, provider.url, api_key=f"{KEY}\n")
    try:
        backend.submit(try_on())
    finally:
        backend.close()
    headers, _ = provider.submits[0]
    assert protocol.api_key(headers) == KEY


# Callbacks: every provider that pushes --------------------------------------------------
#
# A push provider is asked for a callback in its own documented way, and its
# delivery of each situation reads as the same state its query answers; fal
# signs its deliveries, and anything not signed by its key is refused.

URL = "https://cdn.example.com/r.png"


def delivered(backend, headers, body):
    """What the backend reads from a delivery of ``body`` with ``headers``."""
    return backend.parse_callback(callback_request(headers, body))


def callback_request(headers, body):
    meta = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    meta.pop("HTTP_CONTENT_TYPE", None)
    return RequestFactory().post(
        "/tryon/webhooks/x/", data=body, content_type=headers.get("Content-Type", ""), **meta
    )


def done_delivery(protocol, task_id="T-7", url=URL):
    return protocol.delivery(task_id, protocol.done(task_id, url))


@over(ALL)
def test_a_push_backend_says_so_and_a_poll_backend_does_not(protocol):
    backend_class = import_string(protocol.backend)
    assert backend_class.supports_callbacks is protocol.pushes


@over(PUSHING)
def test_a_submit_asks_for_the_callback_where_the_provider_reads_it(backend, provider, protocol):
    url = "https://shop.example.com/tryon/webhooks/x/123/s3cr3t/?a=1&b=2"
    backend.submit(try_on(), callback_url=url)
    assert protocol.callback_url_sent(provider.submit_urls[0]) == url


@over(PUSHING)
def test_a_submit_without_a_callback_asks_for_none(backend, provider, protocol):
    backend.submit(try_on())
    assert protocol.callback_url_sent(provider.submit_urls[0]) == ""


@over(PUSHING)
def test_a_delivered_success_reads_as_the_queried_one(backend, provider, protocol):
    answer = protocol.done("T-1", URL)
    provider.script_query("T-1", answer)

    task_id, state = delivered(backend, *protocol.delivery("T-1", answer))

    assert task_id == "T-1"
    assert state == backend.query("T-1")
    assert state.status == base.SUCCEEDED
    assert state.result_url == URL


@over(PUSHING)
def test_a_delivered_failure_is_nobody_s_fault_but_the_provider_s(backend, provider, protocol):
    task_id, state = delivered(backend, *protocol.delivery("T-1", protocol.task_failed("T-1")))
    assert task_id == "T-1"
    assert state.status == base.FAILED
    assert isinstance(state.error, base.TaskFailedError)
    assert not state.error.shopper_fault


@over(PUSHING)
def test_a_delivered_photo_refusal_is_the_shopper_s_to_fix(backend, provider, protocol):
    _, state = delivered(backend, *protocol.delivery("T-1", protocol.photo_refused("T-1")))
    assert isinstance(state.error, base.InvalidPhotoError)
    assert state.error.shopper_fault


REFUSED_DELIVERIES = {
    "not json": b"not json",
    "a json list": b"[1]",
    "another shape": b'{"unrelated": 1}',
    "empty": b"",
    "oversized": b'{"pad": "' + b"x" * (1024 * 1024) + b'"}',
    "nested too deep": b"[" * 100_000 + b"]" * 100_000,
}


@over(PUSHING)
@pytest.mark.parametrize("body", REFUSED_DELIVERIES.values(), ids=REFUSED_DELIVERIES.keys())
def test_a_delivery_that_is_not_the_provider_s_is_refused(backend, provider, protocol, body):
    headers, _ = done_delivery(protocol)
    if protocol.signs_deliveries:  # signed as it is: only its content is wrong
        headers = protocol.signed("T-7", body)
    with pytest.raises(base.RequestRejectedError):
        delivered(backend, headers, body)


@over(SIGNING)
def test_a_delivery_signed_with_another_key_is_refused(backend, provider, protocol):
    _headers, body = done_delivery(protocol)
    forged = contract.FalSigner().headers(body, request_id="T-7")
    with pytest.raises(base.RequestRejectedError, match="does not verify"):
        delivered(backend, forged, body)


@over(SIGNING)
def test_a_delivery_changed_after_signing_is_refused(backend, provider, protocol):
    headers, body = done_delivery(protocol)
    changed = body.replace(b"cdn.example.com", b"evil.example.net")
    with pytest.raises(base.RequestRejectedError, match="does not verify"):
        delivered(backend, headers, changed)


@over(SIGNING)
@pytest.mark.parametrize("skew", [-400, 400], ids=["old", "from the future"])
def test_a_delivery_whose_timestamp_is_minutes_off_is_refused(backend, provider, protocol, skew):
    _, body = done_delivery(protocol)
    headers = protocol.signer.headers(body, request_id="T-7", timestamp=int(time.time()) + skew)
    with pytest.raises(base.RequestRejectedError, match="five minutes"):
        delivered(backend, headers, body)


@over(SIGNING)
def test_a_signed_delivery_naming_another_request_is_refused(backend, provider, protocol):
    _, body = done_delivery(protocol)
    headers = protocol.signer.headers(body, request_id="T-8")  # signed, for another request
    with pytest.raises(base.RequestRejectedError, match="another request"):
        delivered(backend, headers, body)


@over(SIGNING)
@pytest.mark.parametrize(
    "header",
    [
        "X-Fal-Webhook-Request-Id",
        "X-Fal-Webhook-User-Id",
        "X-Fal-Webhook-Timestamp",
        "X-Fal-Webhook-Signature",
    ],
)
def test_a_delivery_without_each_signed_header_is_refused(backend, provider, protocol, header):
    headers, body = done_delivery(protocol)
    del headers[header]
    with pytest.raises(base.RequestRejectedError, match=header):
        delivered(backend, headers, body)


@over(SIGNING)
def test_the_keys_are_fetched_once_and_forgers_cannot_make_them_fetched_again(
    backend, provider, protocol, monkeypatch
):
    clock = [1000.0]
    monkeypatch.setattr(fal_signature, "monotonic", lambda: clock[0])
    for number in range(5):
        headers, body = done_delivery(protocol, f"T-{number}")
        assert delivered(backend, headers, body)[0] == f"T-{number}"
    assert provider.jwks_fetches == 1
    _, body = done_delivery(protocol, "T-9")

    def forgeries(count):
        for _ in range(count):
            forged = contract.FalSigner().headers(body, request_id="T-9")
            with pytest.raises(base.RequestRejectedError):
                delivered(backend, forged, body)

    forgeries(5)  # within a minute of the fetch: no fetch at all
    assert provider.jwks_fetches == 1
    clock[0] += fal_signature.MIN_REFETCH_INTERVAL + 1
    forgeries(5)  # fal may have rotated its keys: asked once, not five times
    assert provider.jwks_fetches == 2
    clock[0] += fal_signature.KEYS_MAX_AGE + 1
    headers, body = done_delivery(protocol, "T-10")
    assert delivered(backend, headers, body)[0] == "T-10"  # a day on: fetched anew
    assert provider.jwks_fetches == 3
