"""docs/custom-backend.md's backend, as written, against the provider the page describes
(on loopback), and its settings and system check as the page shows them."""

import base64
import json
import re
import sys
import types
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

from django_tryon.backends import base, get_backend
from tests.support.loopback import LoopbackServer, QuietHandler

PAGE = Path(__file__).resolve().parent.parent / "docs" / "custom-backend.md"
MODULE = "tests_docs_acme"  # the page's myshop.tryon, importable by dotted path here

PERSON = base.ImageInput(b"\xff\xd8person", "person.jpg", "image/jpeg")
GARMENT = base.ImageInput(b"\x89PNGgarment", "garment.png", "image/png")


def blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)


@pytest.fixture(scope="module")
def acme_module():
    """The page's first Python block, run as a module."""
    module = types.ModuleType(MODULE)
    exec(compile(blocks("python")[0], str(PAGE), "exec"), module.__dict__)
    sys.modules[MODULE] = module
    yield module
    del sys.modules[MODULE]


class Acme:
    """Acme Try-On as the page describes it: a few scripted states per try-on."""

    def __init__(self):
        self.requests = []
        self.states = {}  # tryon id -> the states its queries answer, in turn
        self.next_error = None  # (status, code) for the next call
        acme = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                acme.requests.append((self.path, dict(self.headers), json.loads(body)))
                if not self._error():
                    self._json(200, {"tryon_id": f"t{len(acme.requests)}"})

            def do_GET(self):
                acme.requests.append((self.path, dict(self.headers), None))
                if self._error():
                    return
                tryon_id = self.path.rsplit("/", 1)[1]
                self._json(200, acme.states[tryon_id].pop(0))

            def _error(self):
                if acme.next_error is None:
                    return False
                status, code = acme.next_error
                acme.next_error = None
                self._json(status, {"code": code, "detail": f"{code} happened."})
                return True

            def _json(self, status, payload):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = LoopbackServer(Handler).start()
        self.url = self.server.url


@pytest.fixture
def acme():
    acme = Acme()
    yield acme
    acme.server.stop()


@pytest.fixture
def settings_for(settings, acme_module, acme):
    def configure(**options):
        settings.TRYON = {
            "BACKEND": f"{MODULE}.AcmeBackend",
            "API_KEY": "acme-key",
            "BASE_URL": acme.url,
            "OPTIONS": options,
        }
        return settings.TRYON

    return configure


def test_the_settings_block_names_the_backend_the_page_writes():
    settings_block = blocks("python")[1]
    assert '"BACKEND": "myshop.tryon.AcmeBackend"' in settings_block
    assert '"OPTIONS": {"quality": "high"}' in settings_block


def test_a_try_on_through_the_pages_backend(settings_for, acme):
    settings_for(quality="high")
    backend = get_backend()
    acme.states["t1"] = [
        {"state": "waiting"},
        {"state": "working"},
        {"state": "done", "image_url": "https://cdn.acme.example/t1.png"},
    ]
    try:
        submission = backend.submit(
            base.TryOnRequest(person_image=PERSON, garment_image=GARMENT, clothes_type="full_body")
        )
        states = [backend.query(submission.task_id) for _ in range(3)]
    finally:
        backend.close()

    assert submission.task_id == "t1"
    path, headers, body = acme.requests[0]
    assert path == "/v2/tryons"
    assert headers["X-Api-Key"] == "acme-key"
    assert base64.b64decode(body["person"]) == PERSON.content
    assert base64.b64decode(body["garment"]) == GARMENT.content
    assert (body["type"], body["quality"]) == ("full_body", "high")
    assert [state.status for state in states] == [base.QUEUED, base.PROCESSING, base.SUCCEEDED]
    assert states[2].result_url == "https://cdn.acme.example/t1.png"


def test_a_failed_try_on(settings_for, acme):
    settings_for()
    acme.states["t9"] = [{"state": "error", "reason": "No garment found."}]
    backend = get_backend()
    state = backend.query("t9")
    backend.close()
    assert state.status == base.FAILED
    assert isinstance(state.error, base.TaskFailedError)
    assert state.error.provider == "acme"


@pytest.mark.parametrize(
    ("status", "error_class", "job_code", "shopper_fault"),
    [
        (401, base.ConfigurationError, "configuration", False),
        (402, base.OutOfCreditsError, "out_of_credits", False),
        (422, base.InvalidPhotoError, "photo_unreadable", True),
        (429, base.RateLimitedError, "provider_unavailable", False),
        (503, base.ProviderUnavailableError, "provider_unavailable", False),
    ],
)
def test_each_error_means_what_the_page_says(
    settings_for, acme, status, error_class, job_code, shopper_fault
):
    settings_for()
    acme.next_error = (status, "E42")
    backend = get_backend()
    with pytest.raises(error_class) as raised:
        backend.submit(base.TryOnRequest(PERSON, GARMENT, "upper_body"))
    backend.close()
    assert raised.value.job_error_code == job_code
    assert raised.value.shopper_fault is shopper_fault
    assert raised.value.code == "E42"


def test_the_check_refuses_a_bad_option_as_the_page_shows(settings_for):
    settings_for(quality="best")
    shown = re.search(r"\?: \(django_tryon\.E020\) (.*)\n\tHINT: (.*)\n", PAGE.read_text())
    errors = [message for message in run_checks() if message.id == "django_tryon.E020"]
    assert [(error.msg, error.hint) for error in errors] == [shown.groups()]
    with pytest.raises(ImproperlyConfigured, match="'best'"):
        get_backend()


def test_a_good_option_passes_the_check(settings_for):
    settings_for(quality="draft")
    assert not [message for message in run_checks() if message.id.startswith("django_tryon")]
