"""One contract, every backend: each against a loopback fake of its provider's protocol.

The same situations (a task made, in flight, done, failed; the photo refused;
the key refused; slow down; out of credits; the provider down; an answer lost
or unreadable) must end in the same outcome whatever the provider, so the
worker, the quota and the shopper see one behaviour. Each fake speaks its
provider's documented words (see :mod:`tests.contract`).
"""

import socket

import pytest
from django.test import RequestFactory
from django.utils.module_loading import import_string

from django_tryon.backends import base
from tests import contract
from tests.fake_provider import DROP, FakeProvider

KEY = "contract-key-0123456789"

PERSON = base.ImageInput(b"\xff\xd8\xff\xe0person-bytes", "person.jpg", "image/jpeg")
GARMENT = base.ImageInput(b"\x89PNG\r\n\x1a\ngarment-bytes", "garment.png", "image/png")


@pytest.fixture(params=contract.PROTOCOLS, ids=lambda protocol: protocol.name)
def protocol(request):
    return request.param


@pytest.fixture
def provider(protocol):
    provider = FakeProvider(protocol).start()
    yield provider
    provider.stop()


@pytest.fixture
def backend(protocol, provider):
    backend = import_string(protocol.backend)(api_key=KEY, base_url=provider.url, read_timeout=5)
    yield backend
    backend.close()


def try_on(clothes_type="lower_body"):
    return base.TryOnRequest(person_image=PERSON, garment_image=GARMENT, clothes_type=clothes_type)


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


@pytest.mark.parametrize("clothes_type", ["upper_body", "lower_body", "full_body"])
def test_a_submit_carries_the_key_both_images_and_the_clothes_type(
    backend, provider, protocol, clothes_type
):
    submission = backend.submit(try_on(clothes_type))

    assert submission.task_id == "task-1"
    assert submission.state is None
    headers, body = provider.submits[0]
    assert protocol.api_key(headers) == KEY
    assert protocol.images_sent(headers, body) == (PERSON.content, GARMENT.content, clothes_type)


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


def test_a_photo_without_a_person_is_the_shoppers_to_fix(backend, provider, protocol):
    error = outcome(backend, provider, protocol, protocol.photo_refused("T-1"))
    assert isinstance(error, base.InvalidPhotoError)
    assert error.shopper_fault
    assert not error.transient


def test_credits(backend, provider, protocol):
    provider.credits = 41
    assert backend.credits().remaining == 41


# Errors before a task exists ------------------------------------------------------

API_ERROR_OUTCOMES = [
    ("bad_request", base.RequestRejectedError, "request_rejected", False),
    ("bad_key", base.ConfigurationError, "configuration", False),
    ("rate_limited", base.RateLimitedError, "provider_unavailable", True),
    ("out_of_credits", base.OutOfCreditsError, "out_of_credits", False),
    ("unavailable", base.ProviderUnavailableError, "provider_unavailable", True),
]


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


def test_a_rate_limit_says_when_to_come_back(backend, provider, protocol):
    status, answer = protocol.api_error("rate_limited")
    provider.script_submit((status, answer, {"Retry-After": "7"}))
    with pytest.raises(base.RateLimitedError) as raised:
        backend.submit(try_on())
    assert raised.value.retry_after == 7.0


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
    "over the size cap": (200, b'{"pad": "' + b"x" * (1024 * 1024 + 10) + b'"}'),
    "not UTF-8": (200, b'{"id": "t-1", "task_id": "t-1", "x": "\xff\xfe"}'),
    "too many digits": (200, b'{"id": 1' + b"0" * 5000 + b"}"),
    "a gateway's page": (502, b"<html>Bad gateway</html>"),
}


@pytest.mark.parametrize("answer", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_a_submit_whose_answer_cannot_be_read_is_in_doubt(backend, provider, answer):
    provider.script_submit(answer)
    with pytest.raises(base.TransientError) as raised:
        backend.submit(try_on())
    assert raised.value.in_doubt
    assert len(provider.submits) == 1


@pytest.mark.parametrize("answer", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_a_query_whose_answer_cannot_be_read_is_retried_and_never_in_doubt(
    backend, provider, answer
):
    provider.script_query("T-1", answer)
    with pytest.raises(base.TransientError) as raised:
        backend.query("T-1")
    assert not raised.value.in_doubt


def test_a_submit_accepted_without_a_task_id_is_in_doubt(backend, provider, protocol):
    status, answer = protocol.submitted("")
    provider.script_submit((status, answer))
    with pytest.raises(base.InvalidResponseError) as raised:
        backend.submit(try_on())
    assert raised.value.in_doubt


def test_a_refused_connection_sent_nothing_and_names_the_address_tried(protocol):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    url = f"http://user:password@127.0.0.1:{port}"
    backend = import_string(protocol.backend)(api_key=KEY, base_url=url)
    try:
        with pytest.raises(base.ProviderConnectionError) as raised:
            backend.submit(try_on())
    finally:
        backend.close()
    assert not raised.value.in_doubt
    assert f"127.0.0.1:{port}/" in str(raised.value)
    assert "password" not in str(raised.value)
    assert KEY not in str(raised.value)


def test_a_redirect_is_refused_and_the_key_never_follows_it(backend, provider, protocol):
    elsewhere = f"{provider.url}/elsewhere"
    provider.script_query("T-1", (302, b"", {"Location": elsewhere}))
    with pytest.raises(base.RequestRejectedError) as raised:
        backend.query("T-1")
    assert raised.value.status_code == 302
    assert provider.others == []  # nothing went to the redirect's target


def test_a_key_with_a_line_break_never_shows_in_an_error(protocol, provider):
    backend = import_string(protocol.backend)(api_key=f"{KEY}\n", base_url=provider.url)
    try:
        backend.submit(try_on())
    finally:
        backend.close()
    headers, _ = provider.submits[0]
    assert protocol.api_key(headers) == KEY


# Callbacks: every provider that pushes --------------------------------------------------
#
# A push provider is asked for a callback in its own documented way, and its
# delivery of each situation reads as the same state its query answers.


@pytest.fixture(params=contract.PUSH_PROTOCOLS, ids=lambda protocol: protocol.name)
def pusher(request):
    return request.param


@pytest.fixture
def push_backend(pusher):
    provider = FakeProvider(pusher).start()
    backend = import_string(pusher.backend)(api_key=KEY, base_url=provider.url, read_timeout=5)
    yield backend, provider
    backend.close()
    provider.stop()


def delivered(pusher, backend, status_and_answer):
    """What the backend reads from a delivery of ``answer`` (``(status, answer)``)."""
    _, answer = status_and_answer
    headers, body = pusher.delivery(answer)
    return backend.parse_callback(callback_request(headers, body))


def callback_request(headers, body):
    meta = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    meta.pop("HTTP_CONTENT_TYPE", None)
    return RequestFactory().post(
        "/tryon/webhooks/x/", data=body, content_type=headers.get("Content-Type", ""), **meta
    )


def test_a_push_backend_says_so_and_a_poll_backend_does_not(protocol):
    backend_class = import_string(protocol.backend)
    assert backend_class.supports_callbacks is protocol.pushes


def test_a_submit_asks_for_the_callback_where_the_provider_reads_it(push_backend, pusher):
    backend, provider = push_backend
    url = "https://shop.example.com/tryon/webhooks/x/123/s3cr3t/?a=1&b=2"
    backend.submit(try_on(), callback_url=url)
    assert pusher.callback_url_sent(provider.submit_urls[0]) == url


def test_a_submit_without_a_callback_asks_for_none(push_backend, pusher):
    backend, provider = push_backend
    backend.submit(try_on())
    assert pusher.callback_url_sent(provider.submit_urls[0]) == ""


def test_a_delivered_success_reads_as_the_queried_one(push_backend, pusher):
    backend, provider = push_backend
    answer = pusher.done("T-1", "https://cdn.example.com/r.png")
    provider.script_query("T-1", answer)

    task_id, state = delivered(pusher, backend, answer)

    assert task_id == "T-1"
    assert state == backend.query("T-1")
    assert state.status == base.SUCCEEDED
    assert state.result_url == "https://cdn.example.com/r.png"


def test_a_delivered_failure_is_nobody_s_fault_but_the_provider_s(push_backend, pusher):
    backend, _ = push_backend
    task_id, state = delivered(pusher, backend, pusher.task_failed("T-1"))
    assert task_id == "T-1"
    assert state.status == base.FAILED
    assert isinstance(state.error, base.TaskFailedError)
    assert not state.error.shopper_fault


def test_a_delivered_photo_refusal_is_the_shopper_s_to_fix(push_backend, pusher):
    backend, _ = push_backend
    _, state = delivered(pusher, backend, pusher.photo_refused("T-1"))
    assert isinstance(state.error, base.InvalidPhotoError)
    assert state.error.shopper_fault


REFUSED_DELIVERIES = {
    "not json": b"not json",
    "a json list": b"[1]",
    "empty": b"",
    "oversized": b'{"pad": "' + b"x" * (1024 * 1024) + b'"}',
    "nested too deep": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("body", REFUSED_DELIVERIES.values(), ids=REFUSED_DELIVERIES.keys())
def test_a_delivery_that_is_not_the_provider_s_is_refused(push_backend, pusher, body):
    backend, _ = push_backend
    headers, _ = pusher.delivery({})
    with pytest.raises(base.RequestRejectedError):
        backend.parse_callback(callback_request(headers, body))
