"""The Vertex AI backend against Google's documented predict request and answer, its
error envelope, and application default credentials from a service account's key file
(a key pair made by the test; its token endpoint is answered by ``responses``)."""

import base64
import json
import time
from urllib.parse import parse_qs

import pytest
import responses
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from django_tryon import checks
from django_tryon.backends import base, get_backend, vertex
from django_tryon.backends.vertex import VertexBackend
from django_tryon.worker import Worker
from tests.support import contract
from tests.support.google_credentials import CLIENT_EMAIL, assertion_claims, service_account_file
from tests.support.loopback import DrippingServer
from tests.support.threads import in_thread, wait_for

TOKEN_URI = "https://oauth2.test/token"
ENDPOINT = "https://us-central1-aiplatform.googleapis.com"
PREDICT_URL = ENDPOINT + contract.VERTEX_PREDICT_PATH
PICTURE = contract.tiny_png()


@pytest.fixture(autouse=True)
def key_file(tmp_path, monkeypatch):
    path = service_account_file(
        tmp_path / "key.json", token_uri=TOKEN_URI, project_id=contract.VERTEX_PROJECT
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    return path


def make(**options):
    return VertexBackend(base_url=None, options=options)


@pytest.fixture
def backend():
    backend = make()
    yield backend
    backend.close()


@pytest.fixture
def request_():
    return contract.documented_request("upper_body")


def token_endpoint(expires_in=3600, token=contract.VERTEX_ACCESS_TOKEN):
    responses.post(
        TOKEN_URI, json={"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}
    )


def b64(content):
    return base64.b64encode(content).decode()


# The predict ----------------------------------------------------------------------


@responses.activate
def test_a_predict_sends_both_images_and_answers_with_the_picture(backend, request_):
    token_endpoint()
    responses.post(PREDICT_URL, json=contract.vertex_prediction(PICTURE))

    submission = backend.submit(request_)

    assert submission.task_id.startswith("vertex-")
    state = submission.state
    assert (state.status, state.result_content) == (base.SUCCEEDED, PICTURE)
    sent = responses.calls[1].request
    assert sent.headers["Authorization"] == f"Bearer {contract.VERTEX_ACCESS_TOKEN}"
    assert json.loads(sent.body) == {
        "instances": [
            {
                "personImage": {"image": {"bytesBase64Encoded": b64(b"\xff\xd8person")}},
                "productImages": [{"image": {"bytesBase64Encoded": b64(b"\x89PNGgarment")}}],
            }
        ],
        "parameters": {"sampleCount": 1},
    }


@responses.activate
def test_the_token_is_asked_for_with_the_key_files_signed_assertion(backend, request_):
    token_endpoint()
    responses.post(PREDICT_URL, json=contract.vertex_prediction(PICTURE))
    backend.submit(request_)

    form = parse_qs(responses.calls[0].request.body.decode())
    assert responses.calls[0].request.url == TOKEN_URI  # the key file's token_uri
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    claims = assertion_claims(form["assertion"][0])  # signed with the key file's key
    # Sent to the key file's token_uri; addressed, as google-auth does, to Google's.
    assert (claims["iss"], claims["aud"]) == (CLIENT_EMAIL, "https://oauth2.googleapis.com/token")
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"


@responses.activate
def test_the_token_is_kept_until_it_expires_then_renewed(backend, request_):
    token_endpoint(expires_in=3600)
    responses.post(PREDICT_URL, json=contract.vertex_prediction(PICTURE))
    backend.submit(request_)
    backend.submit(request_)
    assert [call.request.url for call in responses.calls].count(TOKEN_URI) == 1

    backend.credentials.expiry = backend.credentials.expiry.replace(year=2000)  # expired
    backend.submit(request_)
    assert [call.request.url for call in responses.calls].count(TOKEN_URI) == 2


@responses.activate
def test_options_become_the_documented_parameters(request_):
    backend = make(
        project="other-project",
        location="europe-west4",
        model="virtual-try-on-preview-08-04",
        safety_setting="block_only_high",
        person_generation="allow_adult",
        seed=42,
        add_watermark=False,
        base_steps=48,
        output_mime_type="image/jpeg",
    )
    token_endpoint()
    url = (
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/other-project/locations/"
        "europe-west4/publishers/google/models/virtual-try-on-preview-08-04:predict"
    )
    responses.post(url, json=contract.vertex_prediction(PICTURE, "image/jpeg"))
    backend.submit(request_)
    assert json.loads(responses.calls[1].request.body)["parameters"] == {
        "sampleCount": 1,
        "seed": 42,
        "baseSteps": 48,
        "safetySetting": "block_only_high",
        "personGeneration": "allow_adult",
        "addWatermark": False,
        "outputOptions": {"mimeType": "image/jpeg"},
    }


@responses.activate
def test_a_picture_withheld_by_the_safety_filter_is_a_readable_failure(backend, request_):
    token_endpoint()
    responses.post(PREDICT_URL, json=contract.vertex_filtered("Unsafe: the image was filtered."))
    state = backend.submit(request_).state
    assert state.status == base.FAILED
    assert isinstance(state.error, base.ResultFilteredError)
    assert state.error.job_error_code == "result_filtered"
    assert not state.error.shopper_fault  # the shopper keeps their credit
    assert "Unsafe: the image was filtered." in str(state.error)


@responses.activate
@pytest.mark.parametrize(
    "answer",
    [
        {},
        {"predictions": []},
        {"predictions": [{"mimeType": "image/png"}]},
        {"predictions": [{"bytesBase64Encoded": "not base64!"}]},
    ],
    ids=["nothing", "no prediction", "no bytes", "not base64"],
)
def test_a_predict_answered_without_a_picture_is_in_doubt(backend, request_, answer):
    token_endpoint()
    responses.post(PREDICT_URL, json=answer)
    with pytest.raises(base.InvalidResponseError) as raised:
        backend.submit(request_)
    assert raised.value.in_doubt  # Google may have made (and charged) it


@responses.activate
@pytest.mark.parametrize(
    ("status", "body", "error_class", "job_code"),
    contract.VERTEX_API_ERRORS,
    ids=[f"{row[0]}-{row[1]['error']['status']}" for row in contract.VERTEX_API_ERRORS],
)
def test_every_documented_error_is_mapped(backend, request_, status, body, error_class, job_code):
    token_endpoint()
    responses.post(PREDICT_URL, json=body, status=status)
    with pytest.raises(getattr(base, error_class)) as raised:
        backend.submit(request_)
    err = raised.value
    assert (err.status_code, err.code, err.provider) == (status, body["error"]["status"], "vertex")
    assert err.job_error_code == job_code
    assert contract.VERTEX_ACCESS_TOKEN not in str(err)


def test_there_is_never_a_task_to_query(backend):
    with pytest.raises(base.RequestRejectedError):
        backend.query("vertex-1")


# Credentials --------------------------------------------------------------------------


@responses.activate
def test_credentials_google_refuses_are_a_configuration_error(backend, request_):
    responses.post(
        TOKEN_URI,
        json=contract.GOOGLE_TOKEN_REFUSED,
        status=400,
    )
    with pytest.raises(base.ConfigurationError, match="Google refused the credentials"):
        backend.submit(request_)
    assert len(responses.calls) == 1  # no predict without a token


@responses.activate
def test_an_unreachable_token_service_is_tried_again(backend, request_):
    # No answer registered: the connection fails as a refused one would.
    with pytest.raises(base.ProviderConnectionError, match="token service"):
        backend.submit(request_)


@responses.activate
def test_a_token_answer_that_holds_no_token_is_tried_again(backend, request_):
    responses.post(TOKEN_URI, body="<html>a proxy's page</html>", status=200)
    with pytest.raises(base.ProviderUnavailableError, match="holds no token") as caught:
        backend.submit(request_)
    assert not caught.value.in_doubt  # no predict was sent
    assert len(responses.calls) == 1


@pytest.fixture
def dripping_token_service(request, monkeypatch, tmp_path, settings):
    """A loopback token service sending its (good) answer a byte every 0.2 s, the
    headers or the body (``request.param``); the key file names it; the backend's
    timeouts are 1 s each, so its deadline is 2 s."""
    body = json.dumps(
        {"access_token": "ya29.dripped", "expires_in": 3600, "token_type": "Bearer"}
    ).encode()
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
    )
    service = DrippingServer(head, body, request.param)
    path = service_account_file(
        tmp_path / "dripping.json",
        token_uri=service.url + contract.VERTEX_TOKEN_PATH,
        project_id=contract.VERTEX_PROJECT,
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    settings.TRYON = {**settings.TRYON, "CONNECT_TIMEOUT": 1, "READ_TIMEOUT": 1}
    responses.add_passthru(service.url)
    yield service
    service.stop()


@responses.activate
@pytest.mark.parametrize("dripping_token_service", ["headers", "body"], indirect=True)
def test_a_token_service_dripping_its_answer_is_cut_off_at_its_deadline(
    dripping_token_service, request_
):
    responses.post(PREDICT_URL, json=contract.vertex_prediction(PICTURE))
    backend = make()
    # The configured timeouts, not the predict's three minutes.
    assert backend.token_timeout == (1, 1) and backend.timeout == (1, 180)
    started = time.monotonic()
    with pytest.raises(base.ProviderTimeoutError, match="longer than 2 s in all") as caught:
        backend.submit(request_)
    assert time.monotonic() - started < 60  # the whole answer takes 30 s and more
    assert caught.value.transient and not caught.value.in_doubt  # the job tries again
    assert dripping_token_service.requests == 1
    assert not [call for call in responses.calls if call.request.url == PREDICT_URL]
    backend.close()


@responses.activate
@pytest.mark.parametrize("dripping_token_service", ["body"], indirect=True)
def test_a_token_cut_off_at_the_calls_own_deadline_leaves_the_predict_not_in_doubt(
    dripping_token_service, request_
):
    # read_timeout taken as given: the predict's deadline is the token's, started
    # first, so it is the call's deadline that cuts the token off.
    backend = VertexBackend(base_url=None, connect_timeout=1, read_timeout=1)
    assert backend.call_timeout == backend.token_deadline == 2
    with pytest.raises(base.ProviderTimeoutError, match="cut off") as caught:
        backend.submit(request_)
    # Nothing was sent to Vertex AI: the job is tried again, not failed as in doubt.
    assert not caught.value.in_doubt
    assert dripping_token_service.requests == 1
    backend.close()


@responses.activate
@pytest.mark.parametrize("dripping_token_service", ["body"], indirect=True)
def test_threads_waiting_for_a_token_that_is_cut_off_fail_with_it_at_once(
    dripping_token_service, request_, settings
):
    settings.TRYON = {**settings.TRYON, "READ_TIMEOUT": 4}  # 5 s for the second to queue
    backend = make()
    first = in_thread(lambda: backend.submit(request_))
    wait_for(lambda: dripping_token_service.requests == 1, 10, "the token request")
    second = in_thread(lambda: backend.submit(request_))  # waits for the first's token
    for outcome in (first, second):
        with pytest.raises(base.ProviderTimeoutError, match="in all"):
            outcome(30)
    # The second thread did not ask again (and wait a deadline of its own).
    assert dripping_token_service.requests == 1
    backend.close()


def test_no_credentials_at_all_is_a_configuration_error_that_says_what_to_set(
    backend, request_, monkeypatch, tmp_path
):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(base.ConfigurationError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        backend.submit(request_)


def test_credentials_that_name_no_project_need_the_option(request_, monkeypatch, tmp_path):
    path = service_account_file(tmp_path / "k.json", token_uri=TOKEN_URI, project_id="")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    with pytest.raises(base.ConfigurationError, match=r"OPTIONS'\]\['project'\]"):
        make().submit(request_)


# Settings, timeouts, checks -----------------------------------------------------------


def test_the_backend_waits_long_enough_for_a_predict(settings):
    settings.TRYON = {"BACKEND": "django_tryon.backends.vertex.VertexBackend", "READ_TIMEOUT": 30}
    backend = get_backend()
    assert backend.timeout[1] == VertexBackend.min_read_timeout >= 120
    assert backend.base_url == ENDPOINT
    settings.TRYON["READ_TIMEOUT"] = 400
    assert get_backend().timeout[1] == 400  # longer is kept
    assert (
        VertexBackend(base_url=None, read_timeout=5).timeout[1] == 5
    )  # a keyword is taken as given


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seed": 3}, "needs 'add_watermark': False"),
        ({"seed": 3, "add_watermark": True}, "needs 'add_watermark': False"),
        ({"location": "us-central1/../x"}, "option 'location'"),
        ({"project": "My Project"}, "option 'project'"),
        ({"safety_setting": "block_all"}, "option 'safety_setting'"),
        ({"sample_count": 2}, "Invalid setting 'sample_count'"),
    ],
)
def test_wrong_options_are_refused(options, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        make(**options)


def test_the_global_location_has_googles_global_endpoint():
    assert make(location="global").base_url == "https://aiplatform.googleapis.com"


def test_vertex_needs_no_api_key_and_says_when_google_auth_is_missing(settings, monkeypatch):
    settings.TRYON = {"BACKEND": "django_tryon.backends.vertex.VertexBackend"}
    call_command("check")  # no E001: the credentials are Google's own
    monkeypatch.setattr(vertex, "GOOGLE_AUTH_MISSING", ImportError("No module named 'google'"))
    with pytest.raises(SystemCheckError, match=r"E021.*django-tryon\[vertex\]"):
        call_command("check")


def test_the_lease_check_counts_the_predicts_own_timeout(settings):
    settings.TRYON = {"BACKEND": "django_tryon.backends.vertex.VertexBackend", "READ_TIMEOUT": 30}
    with Worker(worker_id="lease") as worker:
        assert checks.lease_needed() == worker.call_budget + 5
    assert checks.lease_needed() == (5 + 180) + (5 + 30) + 5
    settings.TRYON["LEASE_SECONDS"] = 200  # enough for AILabAPI's calls, not for a predict
    with pytest.raises(SystemCheckError, match="E012"):
        call_command("check")


def test_the_lease_check_counts_a_vertex_fallbacks_timeout(settings):
    # A job may go to any provider of the chain: the budget is the slowest one's.
    settings.TRYON = {
        "API_KEY": "primary-key",
        "READ_TIMEOUT": 30,
        "FALLBACK_BACKENDS": [{"BACKEND": "django_tryon.backends.vertex.VertexBackend"}],
    }
    with Worker(worker_id="lease") as worker:
        assert worker.call_budget == (5 + 180) + (5 + 30)
        assert checks.lease_needed() == worker.call_budget + 5
    settings.TRYON["LEASE_SECONDS"] = 200
    with pytest.raises(SystemCheckError, match="E012"):
        call_command("check")
