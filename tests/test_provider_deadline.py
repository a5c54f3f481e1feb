"""A provider's answer dripping within the read timeout is cut off at the call's deadline."""

import pytest

from django_tryon.backends.ailab import AILabBackend
from django_tryon.backends.base import ProviderTimeoutError
from tests.support.loopback import DrippingServer


def dripping_provider(phase):
    """A provider whose JSON answer comes a byte at a time (its headers or its body)."""
    body = b'{"error_code": 0, "padding": "' + b"x" * 300 + b'"}'
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
    )
    return DrippingServer(head, body, phase)


@pytest.fixture
def dripping(request):
    provider = dripping_provider(request.param)
    yield provider
    provider.stop()


@pytest.mark.parametrize("dripping", ["headers", "body"], indirect=True)
def test_a_submit_dripping_its_answer_is_cut_off_at_the_calls_deadline_and_in_doubt(
    dripping, settings
):
    settings.TRYON = {**settings.TRYON, "CONNECT_TIMEOUT": 1, "READ_TIMEOUT": 1}
    backend = AILabBackend(base_url=dripping.url)
    assert backend.call_timeout == 2
    with pytest.raises(ProviderTimeoutError, match="longer than 2 s in all") as caught:
        backend.call("POST", "/api/portrait/try-on-clothes", json={"a": 1})
    # It may have reached the provider: the worker does not send it again.
    assert caught.value.in_doubt
    assert dripping.requests == 1
    backend.close()


@pytest.mark.parametrize("dripping", ["body"], indirect=True)
def test_a_query_dripping_its_answer_is_cut_off_and_may_be_asked_again(dripping, settings):
    settings.TRYON = {**settings.TRYON, "CONNECT_TIMEOUT": 1, "READ_TIMEOUT": 1}
    backend = AILabBackend(base_url=dripping.url)
    with pytest.raises(ProviderTimeoutError, match="in all") as caught:
        backend.credits()
    assert not caught.value.in_doubt
    backend.close()
