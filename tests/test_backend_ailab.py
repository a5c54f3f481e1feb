"""The AILabAPI backend against the provider's documented requests and answers."""

import json

import pytest
import requests
import responses
from responses import matchers

from django_tryon.backends import base
from django_tryon.backends.ailab import AILabBackend
from tests.support import contract

BASE = "https://api.tryon.test"
SUBMIT_URL = BASE + contract.SUBMIT_PATH
QUERY_URL = BASE + contract.QUERY_PATH
CREDITS_URL = BASE + contract.CREDITS_PATH


@pytest.fixture
def backend():
    backend = AILabBackend(api_key="secret-key", base_url=BASE + "/", read_timeout=7)
    yield backend
    backend.close()


@pytest.fixture
def request_():
    return contract.documented_request("lower_body")


def _multipart_parts(request):
    """The multipart body as {name: (filename or None, bytes)}."""
    content_type = request.headers["Content-Type"]
    boundary = content_type.split("boundary=")[1].encode()
    parts = {}
    for chunk in request.body.split(b"--" + boundary)[1:-1]:
        head, _, value = chunk.strip(b"\r\n").partition(b"\r\n\r\n")
        disposition = head.decode().split("\r\n")[0]
        name = disposition.split('name="')[1].split('"')[0]
        filename = (
            disposition.split('filename="')[1].split('"')[0]
            if "filename=" in head.decode()
            else None
        )
        parts[name] = (filename, value)
    return parts


@responses.activate
def test_submit_sends_the_documented_request(backend, request_):
    responses.post(SUBMIT_URL, json=contract.submit_answer(task_id="T-42", request_id="R-1"))

    submission = backend.submit(request_)

    assert submission == base.Submission(task_id="T-42", request_id="R-1")
    sent = responses.calls[0].request
    assert sent.url == SUBMIT_URL
    assert sent.headers[contract.API_KEY_HEADER] == "secret-key"
    assert sent.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    parts = _multipart_parts(sent)
    assert set(parts) == contract.SUBMIT_FIELDS | contract.SUBMIT_FILES
    assert parts["task_type"] == (None, b"async")
    assert parts["clothes_type"] == (None, b"lower_body")
    assert parts["person_image"] == ("person.jpg", b"\xff\xd8person")
    assert parts["clothes_image"] == ("garment.png", b"\x89PNGgarment")


@responses.activate
def test_submit_uses_the_configured_timeouts(backend, request_):
    seen = {}

    def callback(request):
        seen["timeout"] = request.req_kwargs["timeout"]
        return (200, {}, json.dumps(contract.submit_answer()))

    responses.add_callback(responses.POST, SUBMIT_URL, callback=callback)
    backend.submit(request_)
    assert seen["timeout"] == (5.0, 7)


@responses.activate
@pytest.mark.parametrize(
    ("task_status", "expected"),
    [(0, base.QUEUED), (1, base.PROCESSING)],
)
def test_query_in_flight_states(backend, task_status, expected):
    responses.get(
        QUERY_URL,
        json=contract.query_answer(task_status),
        match=[
            matchers.query_param_matcher({"task_id": "T-1"}),
            matchers.header_matcher({contract.API_KEY_HEADER: "secret-key"}),
        ],
    )
    state = backend.query("T-1")
    assert state.status == expected
    assert not state.is_final
    assert state.request_id == "req-2"


@responses.activate
def test_query_success_carries_the_result_url(backend):
    responses.get(QUERY_URL, json=contract.query_answer(2, "https://cdn.example.com/r.jpg"))
    state = backend.query("T-1")
    assert state.status == base.SUCCEEDED
    assert state.result_url == "https://cdn.example.com/r.jpg"


@responses.activate
def test_query_success_without_url_is_an_invalid_answer(backend):
    answer = contract.query_answer(2, "")
    responses.get(QUERY_URL, json=answer)
    with pytest.raises(base.InvalidResponseError):
        backend.query("T-1")


@responses.activate
@pytest.mark.parametrize("task_status", [3, 7, "2", None, True])
def test_query_status_3_and_unknown_values_are_failures(backend, task_status):
    responses.get(QUERY_URL, json={**contract.public_fields(), "task_status": task_status})
    state = backend.query("T-1")
    assert state.status == base.FAILED
    assert isinstance(state.error, base.TaskFailedError)
    assert repr(task_status) in state.error.code


@responses.activate
@pytest.mark.parametrize(("status", "code", "error_class", "job_code"), contract.ERROR_TABLE)
def test_every_documented_error_is_mapped(backend, request_, status, code, error_class, job_code):
    answer = contract.error_answer(status, code, request_id="R-err")
    responses.post(SUBMIT_URL, json=answer, status=status)

    with pytest.raises(getattr(base, error_class)) as caught:
        backend.submit(request_)

    err = caught.value
    assert err.status_code == status
    assert err.code == code
    assert err.request_id == "R-err"
    assert err.provider == "ailabapi"
    assert err.job_error_code == job_code
    assert code in str(err)


@responses.activate
def test_error_classes_keep_their_meaning(backend, request_):
    responses.post(SUBMIT_URL, json=contract.error_answer(401, "ERROR_USER_NOT_EXISTS"), status=401)
    with pytest.raises(base.ConfigurationError) as caught:
        backend.submit(request_)
    # Configuration errors are outside the provider-error hierarchy, so a retry
    # loop catching TryOnError never swallows them.
    assert not isinstance(caught.value, base.TryOnError)
    assert base.RateLimitedError("x").transient
    assert isinstance(base.InvalidPhotoError("x"), ValueError)
    assert isinstance(base.ProviderTimeoutError("x"), TimeoutError)


@responses.activate
def test_http_200_with_nonzero_error_code_is_an_error(backend):
    answer = contract.error_answer(422, "ERROR_NO_FACE_IN_FILE")
    responses.get(QUERY_URL, json=answer, status=200)
    with pytest.raises(base.InvalidPhotoError) as caught:
        backend.query("T-1")
    assert caught.value.status_code == 422
    assert caught.value.job_error_code == "no_face"


@responses.activate
def test_old_style_error_without_error_detail(backend):
    responses.get(
        QUERY_URL,
        json={"request_id": "R", "error_code": 503, "error_msg": "busy"},
        status=503,
    )
    with pytest.raises(base.ProviderUnavailableError) as caught:
        backend.query("T-1")
    assert caught.value.message == "busy"


@responses.activate
def test_rate_limit_reads_retry_after(backend):
    responses.get(
        QUERY_URL,
        json=contract.error_answer(429, "EXCEEDING_LIMITS"),
        status=429,
        headers={"Retry-After": "12"},
    )
    with pytest.raises(base.RateLimitedError) as caught:
        backend.query("T-1")
    assert caught.value.retry_after == 12.0


@responses.activate
@pytest.mark.parametrize(
    "body", [b"<html>Bad gateway</html>", b"", b"[1, 2]", b'{"unterminated": '], ids=repr
)
def test_garbage_answers(backend, body):
    responses.get(QUERY_URL, body=body, status=502)
    with pytest.raises(base.ProviderUnavailableError):
        backend.query("T-1")
    responses.replace(responses.GET, QUERY_URL, body=body, status=200)
    with pytest.raises(base.InvalidResponseError):
        backend.query("T-1")


@responses.activate
def test_submit_without_task_id_is_in_doubt(backend, request_):
    answer = contract.submit_answer()
    del answer["task_id"]
    responses.post(SUBMIT_URL, json=answer)
    with pytest.raises(base.InvalidResponseError) as caught:
        backend.submit(request_)
    assert caught.value.in_doubt


@responses.activate
def test_read_timeout_on_submit_is_in_doubt_but_connect_failure_is_not(backend, request_):
    responses.post(SUBMIT_URL, body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(base.ProviderTimeoutError) as caught:
        backend.submit(request_)
    assert caught.value.in_doubt

    responses.replace(responses.POST, SUBMIT_URL, body=requests.exceptions.ConnectTimeout("x"))
    with pytest.raises(base.ProviderTimeoutError) as caught:
        backend.submit(request_)
    assert not caught.value.in_doubt

    refused = requests.exceptions.ConnectionError(ConnectionRefusedError(111, "Connection refused"))
    responses.replace(responses.POST, SUBMIT_URL, body=refused)
    with pytest.raises(base.ProviderConnectionError) as caught:
        backend.submit(request_)
    assert not caught.value.in_doubt


@responses.activate
def test_query_timeouts_are_never_in_doubt(backend):
    responses.get(QUERY_URL, body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(base.ProviderTimeoutError) as caught:
        backend.query("T-1")
    assert not caught.value.in_doubt


@responses.activate
def test_connections_are_reused(backend, request_):
    responses.get(QUERY_URL, json=contract.query_answer(1))
    backend.query("a")
    session = backend.session
    backend.query("b")
    assert backend.session is session


@responses.activate
@pytest.mark.parametrize(
    "data", [{"remaining_credits": 41}, {"credits": 41.5}, {"balance": 41}], ids=str
)
def test_credits(backend, data):
    responses.get(CREDITS_URL, json={**contract.public_fields(), "data": data})
    credits = backend.credits()
    assert int(credits.remaining) == 41


@responses.activate
def test_credits_answer_without_a_balance(backend):
    responses.get(CREDITS_URL, json={**contract.public_fields(), "data": {}})
    with pytest.raises(base.InvalidResponseError):
        backend.credits()


def test_error_str_names_the_provider_status_code_and_request():
    err = base.InvalidPhotoError(
        "No face",
        provider="ailabapi",
        status_code=422,
        code="ERROR_NO_FACE_IN_FILE",
        request_id="R9",
    )
    assert str(err) == "No face (ailabapi, HTTP 422, ERROR_NO_FACE_IN_FILE, request_id R9)"


@responses.activate
def test_a_redirect_is_refused_and_the_key_never_follows_it(backend):
    responses.get(QUERY_URL, status=302, headers={"Location": "https://elsewhere.test/steal"})
    elsewhere = responses.get("https://elsewhere.test/steal", json=contract.query_answer(0))

    with pytest.raises(base.RequestRejectedError) as raised:
        backend.query("T-1")

    assert raised.value.status_code == 302
    assert elsewhere.call_count == 0
