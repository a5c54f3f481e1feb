"""``manage.py tryon_check``: the configuration tried for real, over loopback.

The provider is the sandbox (real HTTP); media are served by a plain HTTP
server over the test's MEDIA_ROOT, or not at all.
"""

import functools
import json
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import pytest
import responses
from django.core.files.storage import FileSystemStorage
from django.core.management import CommandError, call_command

from django_tryon import diagnostics
from django_tryon.sandbox import SandboxServer
from django_tryon.sandbox.fal import JWKS_PATH
from tests.support import contract
from tests.support.google_credentials import service_account_file
from tests.support.loopback import DrippingServer

KEY = "right-key-1234"


class RefusingStorage(FileSystemStorage):
    """A storage whose writes are refused, as a read-only bucket or folder refuses them."""

    def _save(self, name, content):
        raise PermissionError(13, "Permission denied", name)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def sandbox():
    with SandboxServer(api_key=KEY, processing_time=0) as server:
        yield server


@pytest.fixture
def media_server(media_root):
    """Serves the test's MEDIA_ROOT at http://127.0.0.1:<port>/media/."""
    media_root.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(QuietHandler, directory=str(media_root.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def configured(settings, sandbox, media_root):
    settings.TRYON = {"API_KEY": KEY, "BASE_URL": sandbox.url}
    return settings


def run(*args):
    """``(exit status, output lines)`` of ``tryon_check``."""
    out = StringIO()
    try:
        call_command("tryon_check", *args, stdout=out, no_color=True)
    except CommandError as err:
        return err.returncode, out.getvalue().splitlines(), str(err)
    return 0, out.getvalue().splitlines(), ""


def line(lines, name):
    (found,) = [text for text in lines if text.split("] ", 1)[1].startswith(name + ":")]
    return found


def unused_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_all_good_with_absolute_media_urls(configured, media_server, media_root):
    configured.MEDIA_URL = media_server + "/media/"
    status, lines, _ = run()
    assert status == 0, lines
    assert [text.split("]")[0] for text in lines] == ["[ok"] * 5
    assert line(lines, "provider").startswith(
        "[ok] provider: ailabapi at " + configured.TRYON["BASE_URL"]
    )
    assert "accepted the API key: 1,000,000 credits left" in line(lines, "provider")
    assert line(lines, "storage 'default'") == (
        "[ok] storage 'default': TRYON['UPLOAD_STORAGE'] and TRYON['RESULT_STORAGE']: "
        "wrote, read back and deleted a file."
    )
    assert line(lines, "media").startswith(f"[ok] media: GET {media_server}/media/tryon/check/")
    # Nothing is left behind on the storage.
    assert [path for path in media_root.rglob("*") if path.is_file()] == []


def test_relative_media_urls_are_said_to_need_the_site_url(configured):
    status, lines, _ = run()
    assert status == 0
    assert line(lines, "media") == (
        "[skip] media: Result URLs are relative to the site (/media/tryon/check/"
        + line(lines, "media").split("/media/tryon/check/")[1].split(")")[0]
        + "): they can only be fetched from the running site. -> Pass --site-url with the "
        "site's address (for runserver, --site-url http://127.0.0.1:8000) while it runs."
    )


def test_site_url_fetches_relative_media_urls(configured, media_server):
    status, lines, _ = run("--site-url", media_server)
    assert status == 0
    assert line(lines, "media").startswith(f"[ok] media: GET {media_server}/media/tryon/check/")


@pytest.fixture
def dripping_site(monkeypatch):
    """A site answering every request a byte every 0.2 s (a minute in all); the
    checks' timeouts are 1 s each, so their deadline is 2 s."""
    body = b"x" * 300
    head = b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
    site = DrippingServer(head, body, "body")
    monkeypatch.setattr(diagnostics, "TIMEOUT", (1.0, 1.0))
    yield site
    site.stop()


def test_a_site_dripping_its_answer_fails_the_media_check_at_its_deadline(
    configured, dripping_site
):
    status, lines, _ = run("--site-url", dripping_site.url)
    assert status == 1
    media = line(lines, "media")
    assert media.startswith(f"[FAIL] media: GET {dripping_site.url}/media/tryon/check/")
    assert "within 2 s in all: cut off" in media
    assert dripping_site.requests == 1


def test_media_not_served_fails_with_what_to_add(configured, media_server):
    configured.MEDIA_URL = "/uploads/"  # the server serves /media/ only: every URL is a 404
    status, lines, error = run("--site-url", media_server)
    assert status == 1
    media = line(lines, "media")
    assert media.startswith(f"[FAIL] media: GET {media_server}/uploads/tryon/check/")
    assert "answered 404, not the file just stored. -> MEDIA_URL is not served." in media
    assert "urlpatterns += static(settings.MEDIA_URL" in media
    assert error == "1 of 5 checks failed: media"


def test_a_wrong_key_is_named_as_such_and_never_shown(configured, sandbox):
    configured.TRYON = {**configured.TRYON, "API_KEY": "wrong-key-5678"}
    status, lines, error = run()
    assert status == 1
    provider = line(lines, "provider")
    assert provider.startswith("[FAIL] provider: ailabapi at ")
    assert "refused the API key" in provider
    assert "-> Set TRYON['API_KEY']" in provider
    assert "wrong-key-5678" not in "\n".join(lines) + error
    assert error == "1 of 5 checks failed: provider"


def test_an_unreachable_base_url_says_it_could_not_be_reached(configured):
    url = f"http://127.0.0.1:{unused_port()}"
    configured.TRYON = {**configured.TRYON, "BASE_URL": url}
    status, lines, _ = run()
    assert status == 1
    provider = line(lines, "provider")
    assert provider.startswith(f"[FAIL] provider: ailabapi at {url} could not be reached")
    assert "start manage.py tryon_sandbox" in provider


def test_a_storage_that_refuses_writes_fails_and_names_its_key(configured, tmp_path):
    configured.STORAGES = {
        **configured.STORAGES,
        "readonly": {
            "BACKEND": "tests.test_tryon_check.RefusingStorage",
            "OPTIONS": {"location": str(tmp_path / "readonly")},
        },
    }
    configured.TRYON = {**configured.TRYON, "UPLOAD_STORAGE": "readonly"}
    status, lines, error = run()
    assert status == 1
    assert line(lines, "storage 'readonly'").startswith(
        "[FAIL] storage 'readonly': TRYON['UPLOAD_STORAGE']: PermissionError:"
    )
    assert line(lines, "storage 'default'").startswith("[ok] storage 'default': TRYON['RESULT")
    assert error == "1 of 6 checks failed: storage 'readonly'"


def test_settings_errors_are_a_line_not_a_stop(configured):
    configured.TRYON = {**configured.TRYON, "POLL_INTERVALL": 1}
    status, lines, _ = run()
    assert status == 1
    assert line(lines, "settings").startswith(
        "[FAIL] settings: django_tryon.E005: Invalid setting 'POLL_INTERVALL' in TRYON."
    )
    assert line(lines, "provider").startswith("[ok] provider")


def test_json_output(configured):
    configured.TRYON = {**configured.TRYON, "RESULT_HOSTS": ["https://cdn.example.com"]}
    out = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("tryon_check", "--json", stdout=out)
    assert raised.value.returncode == 1
    findings = {item["name"]: item for item in json.loads(out.getvalue())}
    assert set(findings) == {"settings", "provider", "storage 'default'", "media", "result hosts"}
    assert findings["provider"]["status"] == "ok"
    assert findings["media"]["status"] == "skipped"
    assert findings["result hosts"]["status"] == "failed"
    assert "'https://cdn.example.com' is not a host name" in findings["result hosts"]["message"]


def test_result_hosts_that_do_not_resolve_are_named(settings):
    def resolver(host, port, **kwargs):
        if host == "cdn.example.com":
            raise socket.gaierror(-2, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]

    settings.TRYON = {"API_KEY": "k", "RESULT_HOSTS": ["results.example.net", "cdn.example.com"]}
    finding = diagnostics.check_result_hosts(resolver=resolver)
    assert finding.status == diagnostics.FAILED
    assert finding.message == (
        "Results may come from www.ailabapi.com (ailabapi's address), results.example.net, "
        "cdn.example.com, and from https hosts on public addresses. But 'cdn.example.com' "
        "does not resolve ([Errno -2] Name or service not known)."
    )
    settings.TRYON = {"API_KEY": "k", "RESULT_HOSTS": ["results.example.net"]}
    assert diagnostics.check_result_hosts(resolver=resolver).status == diagnostics.OK


def test_result_hosts_name_each_providers_own_address(settings):
    # Vertex AI has no BASE_URL by default: its address is made from its location,
    # and the worker trusts that host (it once read "?" here). A fallback's address
    # is trusted for its own jobs' results, so it is named too.
    settings.TRYON = {
        "BACKEND": "django_tryon.backends.vertex.VertexBackend",
        "OPTIONS": {"project": "my-shop-project", "location": "europe-west4"},
        "FALLBACK_BACKENDS": [
            {"BACKEND": "django_tryon.backends.fashn.FashnBackend", "API_KEY": "f"},
            {"BACKEND": "django_tryon.backends.ailab.AILabBackend", "API_KEY": "a"},
        ],
    }
    finding = diagnostics.check_result_hosts()
    assert finding.status == diagnostics.OK
    assert finding.message == (
        "Results may come from europe-west4-aiplatform.googleapis.com (vertex's address), "
        "api.fashn.ai (fashn's address), www.ailabapi.com (ailabapi's address), "
        "and from https hosts on public addresses."
    )


# Vertex AI: Google's credentials, no API key ------------------------------------------

GOOGLE_TOKEN_URI = "https://oauth2.test/token"


@pytest.fixture
def on_vertex(settings, tmp_path, monkeypatch):
    key_file = service_account_file(
        tmp_path / "key.json", token_uri=GOOGLE_TOKEN_URI, project_id="shop-project-1"
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    settings.TRYON = {
        "BACKEND": "django_tryon.backends.vertex.VertexBackend",
        "OPTIONS": {"location": "europe-west4"},
    }
    return monkeypatch


@responses.activate
def test_vertex_credentials_are_checked_with_a_token_not_a_predict(on_vertex):
    # The provider line was a skip: missing credentials showed only at the first try-on.
    responses.post(
        GOOGLE_TOKEN_URI,
        json={"access_token": "ya29.token", "expires_in": 3600, "token_type": "Bearer"},
    )
    finding = diagnostics.check_provider()
    assert finding.status == diagnostics.OK
    assert finding.message == (
        "vertex at https://europe-west4-aiplatform.googleapis.com: Google's token service "
        "accepted the credentials, for project 'shop-project-1'. No predict is tried (each "
        "is charged): the first try-on checks the role and the model."
    )
    assert [call.request.url for call in responses.calls] == [GOOGLE_TOKEN_URI]


@responses.activate
def test_vertex_credentials_refused_or_missing_fail_with_what_to_set(on_vertex, tmp_path):
    responses.post(
        GOOGLE_TOKEN_URI,
        json=contract.GOOGLE_TOKEN_REFUSED,
        status=400,
    )
    refused = diagnostics.check_provider()
    assert refused.status == diagnostics.FAILED
    assert "Google refused the credentials" in refused.message
    assert refused.hint.startswith("Set GOOGLE_APPLICATION_CREDENTIALS to the key file")

    on_vertex.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    missing = diagnostics.check_provider()
    assert missing.status == diagnostics.FAILED
    assert "No Google application default credentials" in missing.message
    assert missing.hint == refused.hint


@responses.activate
def test_vertex_without_a_token_service_says_so(on_vertex):
    # Nothing answers at the token URI: the connection fails, as a refused one would.
    finding = diagnostics.check_provider()
    assert finding.status == diagnostics.FAILED
    assert "no token could be had" in finding.message
    assert finding.hint.startswith("Check that this machine reaches Google's token service")


# Webhooks -----------------------------------------------------------------------------


@pytest.fixture
def on_fashn(settings, media_root):
    with SandboxServer(protocol="fashn", api_key=KEY, processing_time=0) as server:
        settings.TRYON = {
            "BACKEND": "django_tryon.backends.fashn.FashnBackend",
            "API_KEY": KEY,
            "BASE_URL": server.url,
        }
        yield settings


@pytest.mark.django_db(transaction=True)
def test_the_webhook_endpoint_is_reached_at_the_shops_origin(on_fashn, live_server):
    on_fashn.TRYON = {**on_fashn.TRYON, "WEBHOOK_BASE_URL": live_server.url}
    _, lines, _ = run()
    found = line(lines, "webhooks")
    assert found.startswith(f"[ok] webhooks: POST {live_server.url}/tryon/webhooks/fashn/")
    assert "refused with 403" in found


def test_a_webhook_origin_nothing_answers_at_fails_with_what_it_costs(on_fashn):
    on_fashn.TRYON = {**on_fashn.TRYON, "WEBHOOK_BASE_URL": f"http://127.0.0.1:{unused_port()}"}
    status, lines, _ = run()
    assert status == 1
    found = line(lines, "webhooks")
    assert found.startswith("[FAIL] webhooks: POST http://127.0.0.1:")
    assert "WEBHOOK_FALLBACK_INTERVAL" in found


def test_a_webhook_origin_where_another_site_answers_fails(on_fashn, media_server):
    # A plain file server: it answers, but not as the webhook endpoint does.
    on_fashn.TRYON = {**on_fashn.TRYON, "WEBHOOK_BASE_URL": media_server}
    status, lines, _ = run()
    assert status == 1
    assert "not the webhook endpoint" in line(lines, "webhooks")


def test_a_webhook_origin_dripping_its_answer_fails_at_the_deadline(on_fashn, dripping_site):
    on_fashn.TRYON = {**on_fashn.TRYON, "WEBHOOK_BASE_URL": dripping_site.url}
    status, lines, _ = run()
    assert status == 1
    assert line(lines, "webhooks").startswith(
        f"[FAIL] webhooks: POST {dripping_site.url}/tryon/webhooks/fashn/"
    )
    assert "failed: Timeout." in line(lines, "webhooks")
    assert dripping_site.requests == 1


@pytest.mark.django_db(transaction=True)
def test_fals_webhook_keys_out_of_reach_fail_with_where_to_point_them(settings, live_server):
    # fal's sandbox with the jwks_url of another place (fal's own, by default): the
    # endpoint answers, but every signed delivery would be refused with 503.
    with SandboxServer(protocol="fal", api_key=KEY, processing_time=0) as fal:
        settings.TRYON = {
            "BACKEND": "django_tryon.backends.fal.FalBackend",
            "API_KEY": KEY,
            "BASE_URL": fal.url,
            "WEBHOOK_BASE_URL": live_server.url,
            "OPTIONS": {"jwks_url": f"http://127.0.0.1:{unused_port()}/.well-known/jwks.json"},
        }
        status, lines, _ = run()
        assert status == 1
        found = line(lines, "webhooks")
        assert found.startswith(
            "[FAIL] webhooks: The endpoint answers, but fal's webhook keys could not be "
            "fetched from http://127.0.0.1:"
        )
        assert "-> Set OPTIONS['jwks_url']" in found
        assert "/.well-known/jwks.json) when BASE_URL is the sandbox." in found

        settings.TRYON = {**settings.TRYON, "OPTIONS": {"jwks_url": fal.url + JWKS_PATH}}
        _, lines, _ = run()
        assert line(lines, "webhooks").startswith(f"[ok] webhooks: POST {live_server.url}/")


def test_webhooks_for_a_backend_that_cannot_push_are_skipped(configured):
    configured.TRYON = {**configured.TRYON, "WEBHOOK_BASE_URL": "https://shop.example.com"}
    _, lines, _ = run()
    assert line(lines, "webhooks").startswith("[skip] webhooks: WEBHOOK_BASE_URL is set, but")


def test_webhooks_are_checked_at_a_fallback_that_pushes(configured):
    configured.TRYON = {
        **configured.TRYON,
        "WEBHOOK_BASE_URL": f"http://127.0.0.1:{unused_port()}",
        "FALLBACK_BACKENDS": [
            {
                "BACKEND": "django_tryon.backends.fashn.FashnBackend",
                "API_KEY": "fallback-key",
                "BASE_URL": f"http://127.0.0.1:{unused_port()}",  # nothing answers
            }
        ],
    }
    _, lines, _ = run()
    found = line(lines, "webhooks")  # the primary (AILabAPI) cannot push; FASHN can
    assert found.startswith("[FAIL] webhooks: POST http://127.0.0.1:")
    assert "/tryon/webhooks/fashn/" in found


def test_without_webhooks_there_is_no_webhook_line(configured):
    _, lines, _ = run()
    assert not [text for text in lines if "webhooks:" in text]


def test_each_fallback_is_asked_with_its_own_key(configured, media_server):
    configured.MEDIA_URL = media_server + "/media/"
    with SandboxServer(protocol="fashn", api_key="fallback-key", credits=5) as fashn:
        configured.TRYON = {
            **configured.TRYON,
            "FALLBACK_BACKENDS": [
                {
                    "BACKEND": "django_tryon.backends.fashn.FashnBackend",
                    "API_KEY": "wrong-key",
                    "BASE_URL": fashn.url,
                }
            ],
        }
        status, lines, error = run()
        assert (status, error) == (1, "1 of 6 checks failed: fallback fashn")
        fallback = line(lines, "fallback fashn")
        assert fallback.startswith(
            f"[FAIL] fallback fashn: fashn at {fashn.url} refused the API key"
        )
        assert "-> Set TRYON['FALLBACK_BACKENDS'][0]['API_KEY']" in fallback
        assert "wrong-key" not in fallback
        assert line(lines, "provider").startswith("[ok] provider: ailabapi")

        configured.TRYON["FALLBACK_BACKENDS"][0]["API_KEY"] = "fallback-key"
        _status, lines, _error = run()
        fallback = line(lines, "fallback fashn")
        # Five credits: under CREDITS_WARNING_THRESHOLD, so staff are told.
        assert fallback.startswith(
            f"[FAIL] fallback fashn: fashn at {fashn.url} accepted the API key"
        )
        assert "only 5 credits are left" in fallback
