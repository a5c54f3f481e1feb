"""EnvironmentCachingSession and PoolKeepingAdapter: the request Requests would send,
and the answer it would give, for less CPU (send_direct; the proxy environment and
netrc looked up once per host)."""

import base64
import re
from datetime import timedelta

import pytest
import requests
import responses

from django_tryon import http
from django_tryon.results import ResultFetcher, ResultURLForbidden
from tests.support.loopback import LoopbackServer, QuietHandler

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
        (
            "POST",
            ORIGIN + "/v1/run",
            {"params": {"webhook_url": "https://shop/cb?x=1"}, "json": {"inputs": {"a": "é"}}},
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

    assert session.prepared_url_count == http.PREPARED_URLS_KEPT
    assert responses.calls[-1].request.url == f"{ORIGIN}/results/{http.PREPARED_URLS_KEPT + 19}.jpg"


class _Origin:
    """A real HTTP server on loopback that records each request line's target."""

    def __init__(self):
        self.targets = []
        origin = self

        class Handler(QuietHandler):
            def do_GET(self):
                origin.targets.append(self.path)
                body = b"hello"
                self.send_response(200)
                if "cookie" in self.path:
                    self.send_header("Set-Cookie", "balancer=node-3; Path=/")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._loopback = LoopbackServer(Handler).start()
        self.url = self._loopback.url

    def close(self):
        self._loopback.stop()


@pytest.fixture
def origins(monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    made = [_Origin(), _Origin()]
    yield made
    for origin in made:
        origin.close()


def _count_pool_lookups(adapter, monkeypatch):
    lookups = []
    find = adapter.poolmanager.connection_from_host

    def counted(*args, **kwargs):
        lookups.append(kwargs.get("host", args[0] if args else None))
        return find(*args, **kwargs)

    monkeypatch.setattr(adapter.poolmanager, "connection_from_host", counted)
    return lookups


def test_an_origins_pool_is_looked_up_once(session, origins, monkeypatch):
    first, second = origins
    lookups = _count_pool_lookups(session.get_adapter(first.url), monkeypatch)

    answers = [session.send_direct("GET", f"{first.url}/r/{n}") for n in range(3)]
    answers.append(session.send_direct("GET", f"{second.url}/r/9"))
    answers.append(session.send_direct("GET", f"{first.url}/r/3"))

    assert [answer.text for answer in answers] == ["hello"] * 5
    assert len(lookups) == 2  # one per origin
    assert first.targets == ["/r/0", "/r/1", "/r/2", "/r/3"]


def test_a_pool_closed_since_is_looked_up_again(origins, monkeypatch):
    first, second = origins
    # One pool at a time: each origin's pool closes the other's.
    adapter = http.PoolKeepingAdapter(pool_connections=1)
    session = http.EnvironmentCachingSession(adapter)
    lookups = _count_pool_lookups(adapter, monkeypatch)

    for url in (first.url, second.url, first.url, second.url):
        assert session.send_direct("GET", f"{url}/r").text == "hello"
    adapter.close()
    assert session.send_direct("GET", f"{first.url}/r").text == "hello"

    assert len(lookups) == 5
    session.close()


def test_requests_through_a_proxy_take_requests_own_way(session, origins, monkeypatch):
    proxy = origins[0]
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    answer = session.send_direct("GET", "http://shop-cdn.test/results/a.jpg")

    assert answer.text == "hello"
    assert proxy.targets == ["http://shop-cdn.test/results/a.jpg"]  # the full URL, to the proxy


def test_the_answer_is_the_one_send_gives(session, origins):
    seen = []
    session.hooks["response"].append(lambda response, **kwargs: seen.append(response.url))
    url = f"{origins[0].url}/set-cookie"

    answer = session.send_direct("GET", url)

    assert answer.status_code == 200 and answer.content == b"hello"
    assert answer.raw.closed or answer.raw.isclosed()  # read ahead: not streamed
    assert timedelta(0) < answer.elapsed < timedelta(seconds=10)
    assert seen == [url]
    assert session.cookies.get("balancer") == "node-3"  # kept, and sent back from now on
    session.send_direct("GET", f"{origins[0].url}/next")
    assert origins[0].targets == ["/set-cookie", "/next"]


class _Refused(Exception):
    pass


def _peer_checking_session(check_peer):
    return http.EnvironmentCachingSession(http.PeerCheckingAdapter(check_peer))


def test_each_new_connection_is_checked_once_at_the_address_it_reached(origins):
    first, second = origins
    checked = []
    session = _peer_checking_session(lambda host, address: checked.append((host, address)))

    for url in (first.url, first.url, second.url, first.url):
        assert session.send_direct("GET", f"{url}/r").text == "hello"

    # One check per connection made; the kept connections are not checked again.
    assert checked == [("127.0.0.1", "127.0.0.1")] * 2
    # A name is checked as the URL spells it, at the address the connection found.
    session.send_direct("GET", f"http://localhost:{first.url.rsplit(':', 1)[1]}/r")
    assert checked[-1] == ("localhost", "127.0.0.1")
    session.close()


def test_a_refused_peer_gets_no_request_and_the_refusal_reaches_the_caller(origins):
    def refuse(host, address):
        raise _Refused(f"{host} at {address}")

    session = _peer_checking_session(refuse)

    with pytest.raises(_Refused, match=re.escape("127.0.0.1 at 127.0.0.1")):
        session.send_direct("GET", f"{origins[0].url}/r")
    assert origins[0].targets == []
    session.close()


def test_connections_to_a_proxy_are_not_checked(origins, monkeypatch):
    proxy = origins[0]
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    checked = []
    session = _peer_checking_session(lambda host, address: checked.append(host))

    assert session.send_direct("GET", "http://shop-cdn.test/results/a.jpg").text == "hello"

    # The proxy resolves the name and reaches the host itself.
    assert checked == []
    assert proxy.targets == ["http://shop-cdn.test/results/a.jpg"]
    session.close()


def test_a_peer_checking_adapter_keeps_its_check_when_pickled(origins):
    import pickle

    fetcher = ResultFetcher(base_url="https://api.tryon.test", max_bytes=10, timeout=1)
    copy = pickle.loads(pickle.dumps(http.PeerCheckingAdapter(fetcher.check_peer)))
    session = http.EnvironmentCachingSession(copy)

    with pytest.raises(ResultURLForbidden, match="when connecting, to a non-public address"):
        session.send_direct("GET", f"{origins[0].url}/r")
    session.close()


def test_downloads_read_the_proxy_environment_once_per_host(monkeypatch):
    import requests.sessions

    from django_tryon.http import EnvironmentCachingSession

    calls = []
    real = requests.sessions.get_environ_proxies

    def counting(url, no_proxy=None):
        calls.append(url)
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counting)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    session = EnvironmentCachingSession()
    for _ in range(3):
        merged = session.merge_environment_settings(
            "https://cdn.example/a.jpg", {}, True, None, None
        )
    assert merged["proxies"]["https"] == "http://proxy.internal:3128"
    assert len(calls) == 1
    session.merge_environment_settings("https://other.example/b.jpg", {}, True, None, None)
    assert len(calls) == 2
    # A caller's own proxies are never cached over.
    own = session.merge_environment_settings(
        "https://cdn.example/a.jpg", {"https": "http://mine:1"}, True, None, None
    )
    assert own["proxies"]["https"] == "http://mine:1"


def basic_auth(user, password):
    """The ``Authorization`` header of HTTP Basic authentication (RFC 7617)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_sessions_look_for_netrc_credentials_once_per_host(monkeypatch, tmp_path):
    import requests

    from django_tryon import http

    netrc = tmp_path / "netrc"
    netrc.write_text("machine cdn.example login shop password s3cret\n")
    monkeypatch.setenv("NETRC", str(netrc))
    calls = []
    real = http.get_netrc_auth

    def counting(url, raise_errors=False):
        calls.append(url)
        return real(url, raise_errors=raise_errors)

    monkeypatch.setattr(http, "get_netrc_auth", counting)
    session = http.EnvironmentCachingSession()
    request = requests.Request("GET", "https://cdn.example/a.jpg")
    for _ in range(3):
        prepared = session.prepare_request(request)
        # The credentials are still sent, as Requests sends them from netrc.
        assert prepared.headers["Authorization"] == basic_auth("shop", "s3cret")
    assert len(calls) == 1
    assert request.auth is None  # the caller's request is left as it was
    other = session.prepare_request(requests.Request("GET", "https://other.example/b.jpg"))
    assert "Authorization" not in other.headers
    assert len(calls) == 2
    session.prepare_request(requests.Request("GET", "https://other.example/c.jpg"))
    assert len(calls) == 2
    # A request's own credentials are never replaced.
    own = session.prepare_request(
        requests.Request("GET", "https://cdn.example/a.jpg", auth=("me", "mine"))
    )
    assert own.headers["Authorization"] == basic_auth("me", "mine")
