"""EnvironmentCachingSession.send_direct: the request Requests would send, for less CPU."""

import re

import pytest
import requests
import responses

from django_tryon import http

ORIGIN = "https://api.tryon.test"


@pytest.fixture
def session():
    session = http.EnvironmentCachingSession()
    session.headers["ailabapi-api-key"] = "secret-key"
    yield session
    session.close()


def _wire(request):
    """What a prepared request puts on the wire, boundary aside."""
    body = request.body or b""
    content_type = request.headers.get("Content-Type", "")
    if "boundary=" in content_type:
        boundary = content_type.split("boundary=")[1]
        body = body.replace(boundary.encode(), b"BOUNDARY")
        content_type = content_type.replace(boundary, "BOUNDARY")
    headers = {**request.headers, "Content-Type": content_type}
    if not content_type:
        del headers["Content-Type"]
    return request.method, request.url, headers, body


@responses.activate
@pytest.mark.parametrize(
    "method, url, options",
    [
        ("GET", ORIGIN + "/api/query", {"params": {"task_id": "T 1/ü&x=y"}}),
        ("GET", ORIGIN + "/api/query?fixed=1", {"params": {"task_id": "T-2"}}),
        ("GET", ORIGIN + "/results/a b/ü.jpg", {}),
        (
            "POST",
            ORIGIN + "/api/submit",
            {
                "data": {"task_type": "async", "clothes_type": "upper_body"},
                "files": {"person_image": ("p.jpg", b"\xff\xd8person", "image/jpeg")},
            },
        ),
    ],
)
def test_the_same_request_as_requests_sends(session, method, url, options):
    responses.add(method, re.compile(r".*"), json={"ok": True})
    reference = requests.Session()
    reference.headers["ailabapi-api-key"] = "secret-key"

    reference.request(method, url, **options)
    session.send_direct(method, url, **options)
    session.send_direct(method, url, **options)  # the second one from the kept preparation

    expected, first, second = (_wire(call.request) for call in responses.calls)
    assert first == expected
    assert second == expected


@responses.activate
def test_redirects_are_handed_back_not_followed(session):
    responses.get(ORIGIN + "/api/query", status=302, headers={"Location": "https://else.test/"})
    elsewhere = responses.get("https://else.test/", json={})

    answer = session.send_direct("GET", ORIGIN + "/api/query")

    assert answer.status_code == 302
    assert elsewhere.call_count == 0


@responses.activate
def test_cookies_the_session_holds_are_sent_back(session):
    responses.get(ORIGIN + "/api/query", json={})
    session.cookies.set("balancer", "node-2", domain="api.tryon.test")

    session.send_direct("GET", ORIGIN + "/api/query")

    assert responses.calls[0].request.headers["Cookie"] == "balancer=node-2"


@responses.activate
def test_stream_and_timeout_reach_the_transport(session):
    responses.get(ORIGIN + "/r.jpg", body=b"x" * 10)

    answer = session.send_direct("GET", ORIGIN + "/r.jpg", stream=True, timeout=(1, 2))

    assert answer.raw.read() == b"x" * 10  # not read ahead: streamed
    assert responses.calls[0].request.req_kwargs["timeout"] == (1, 2)


@responses.activate
def test_only_a_few_prepared_urls_are_kept(session):
    responses.get(re.compile(ORIGIN + r"/results/.*"), body=b"")

    for number in range(http.PREPARED_URLS_KEPT + 20):
        session.send_direct("GET", f"{ORIGIN}/results/{number}.jpg")

    assert len(session._prepared_urls) == http.PREPARED_URLS_KEPT
    assert responses.calls[-1].request.url == f"{ORIGIN}/results/{http.PREPARED_URLS_KEPT + 19}.jpg"
