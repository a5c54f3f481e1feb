"""The FASHN backend against FASHN's documented requests and answers (API v1)."""

import base64
import json

import pytest
import responses
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory
from responses import matchers

from django_tryon.backends import base, get_backend
from django_tryon.backends.fashn import MAX_CALLBACK_BYTES, FashnBackend
from tests.support import contract

BASE = "https://api.fashn.test"
RUN_URL = BASE + contract.FASHN_RUN_PATH
CREDITS_URL = BASE + contract.FASHN_CREDITS_PATH
PREDICTION = "123a87r9-4129-4bb3-be18-9c9fb5bd7fc1-u1"
STATUS_URL = BASE + contract.FASHN_STATUS_PATH + PREDICTION


@pytest.fixture
def backend():
    backend = FashnBackend(api_key="fa-secret", base_url=BASE + "/", read_timeout=7, options={})
    yield backend
    backend.close()


@pytest.fixture
def request_():
    return contract.documented_request("full_body")


def data_uri(content_type, content):
    return f"data:{content_type};base64,{base64.b64encode(content).decode()}"


# Submit ---------------------------------------------------------------------------


@responses.activate
def test_submit_sends_the_documented_run(backend, request_):
    responses.post(RUN_URL, json=contract.fashn_run_answer(PREDICTION))

    submission = backend.submit(request_)

    assert submission == base.Submission(task_id=PREDICTION, request_id=PREDICTION)
    sent = responses.calls[0].request
    assert sent.url == RUN_URL
    assert sent.headers["Authorization"] == "Bearer fa-secret"
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.body) == {
        "model_name": "tryon-v1.6",
        "inputs": {
            "model_image": data_uri("image/jpeg", b"\xff\xd8person"),
            "garment_image": data_uri("image/png", b"\x89PNGgarment"),
            "category": "one-pieces",
            "mode": "balanced",
            "moderation_level": "permissive",
            "garment_photo_type": "auto",
            "segmentation_free": True,
            "output_format": "png",
        },
    }


@responses.activate
@pytest.mark.parametrize(
    ("clothes_type", "category"),
    [("upper_body", "tops"), ("lower_body", "bottoms"), ("full_body", "one-pieces")],
)
def test_clothes_types_become_categories(backend, request_, clothes_type, category):
    responses.post(RUN_URL, json=contract.fashn_run_answer())
    backend.submit(base.TryOnRequest(request_.person_image, request_.garment_image, clothes_type))
    assert json.loads(responses.calls[0].request.body)["inputs"]["category"] == category


@responses.activate
def test_a_callback_url_goes_as_webhook_url(backend, request_):
    callback = "https://shop.example.com/tryon/callbacks/fashn/s3cr3t/?job=1&x=a b"
    responses.post(
        RUN_URL,
        json=contract.fashn_run_answer(),
        match=[matchers.query_param_matcher({"webhook_url": callback})],
    )
    backend.submit(request_, callback_url=callback)
    assert len(responses.calls) == 1


@responses.activate
def test_options_come_from_settings_and_none_is_not_sent(settings, request_):
    settings.TRYON = {
        "BACKEND": "django_tryon.backends.fashn.FashnBackend",
        "API_KEY": "k",
        "BASE_URL": BASE,
        "OPTIONS": {
            "model_name": "tryon-v1.6",
            "mode": "quality",
            "moderation_level": "none",
            "garment_photo_type": "flat-lay",
            "seed": 7,
            "output_format": None,
        },
    }
    responses.post(RUN_URL, json=contract.fashn_run_answer())
    backend = get_backend()
    backend.submit(request_)
    inputs = json.loads(responses.calls[0].request.body)["inputs"]
    assert (inputs["mode"], inputs["moderation_level"], inputs["garment_photo_type"]) == (
        "quality",
        "none",
        "flat-lay",
    )
    assert inputs["seed"] == 7
    assert "output_format" not in inputs


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mood": "quality"}, "Invalid setting 'mood' for FashnBackend"),
        ({"mode": "fastest"}, "Invalid value 'fastest' for FashnBackend's option 'mode'"),
        ({"segmentation_free": "yes"}, "option 'segmentation_free'"),
        ({"seed": True}, "option 'seed'"),
        ({"model_name": " "}, "option 'model_name'"),
        ("quality", "must be a dict"),
    ],
)
def test_wrong_options_are_refused(options, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        FashnBackend(api_key="k", options=options)


@responses.activate
@pytest.mark.parametrize(
    "answer",
    [
        {"error": None},
        {"id": "", "error": None},
        {"id": 42},
        {"id": "a/b"},
        {"id": "x", "error": "Oops"},
    ],
    ids=["no id", "empty id", "number", "a path", "an error"],
)
def test_a_run_answered_without_a_usable_id_is_in_doubt(backend, request_, answer):
    responses.post(RUN_URL, json=answer)
    with pytest.raises(base.InvalidResponseError) as raised:
        backend.submit(request_)
    assert raised.value.in_doubt


# Errors before a prediction exists --------------------------------------------------


@responses.activate
@pytest.mark.parametrize(("status", "name", "error_class", "job_code"), contract.FASHN_API_ERRORS)
def test_every_documented_api_error_is_mapped(
    backend, request_, status, name, error_class, job_code
):
    responses.post(RUN_URL, json=contract.fashn_error_answer(name, "Words."), status=status)

    with pytest.raises(getattr(base, error_class)) as raised:
        backend.submit(request_)

    err = raised.value
    assert err.status_code == status
    assert err.code == name
    assert err.provider == "fashn"
    assert err.job_error_code == job_code
    assert not err.shopper_fault
    assert name in str(err)
    assert "Words." in str(err)


@responses.activate
def test_a_status_no_longer_tracked_is_refused(backend):
    responses.get(STATUS_URL, json=contract.fashn_error_answer("NotFound"), status=404)
    with pytest.raises(base.RequestRejectedError):
        backend.query(PREDICTION)


# Status -------------------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    ("status", "expected"),
    [("starting", base.QUEUED), ("in_queue", base.QUEUED), ("processing", base.PROCESSING)],
)
def test_in_flight_statuses(backend, status, expected):
    responses.get(
        STATUS_URL,
        json=contract.fashn_status_answer(PREDICTION, status),
        match=[matchers.header_matcher({"Authorization": "Bearer fa-secret"})],
    )
    state = backend.query(PREDICTION)
    assert state.status == expected
    assert not state.is_final


@responses.activate
def test_completed_carries_the_first_output(backend):
    output = ["https://cdn.fashn.ai/p/output_0.png", "https://cdn.fashn.ai/p/output_1.png"]
    responses.get(
        STATUS_URL, json=contract.fashn_status_answer(PREDICTION, "completed", output=output)
    )
    state = backend.query(PREDICTION)
    assert state.status == base.SUCCEEDED
    assert state.result_url == output[0]
    assert state.request_id == PREDICTION


@responses.activate
@pytest.mark.parametrize(
    "output", [[], None, [42], ["data:image/png;base64,AAAA"], ["/relative.png"], "https://x/y"]
)
def test_completed_without_a_result_url_is_an_invalid_answer(backend, output):
    answer = contract.fashn_status_answer(PREDICTION, "completed", output=output)
    if output is None:
        del answer["output"]
    responses.get(STATUS_URL, json=answer)
    with pytest.raises(base.InvalidResponseError):
        backend.query(PREDICTION)


@responses.activate
@pytest.mark.parametrize("status", ["canceled", "", None, 3, ["completed"]])
def test_an_unknown_status_is_an_invalid_answer_not_a_result(backend, status):
    responses.get(STATUS_URL, json={"id": PREDICTION, "status": status, "error": None})
    with pytest.raises(base.InvalidResponseError):
        backend.query(PREDICTION)


@responses.activate
@pytest.mark.parametrize(
    ("name", "message", "error_class", "job_code", "shopper_fault"),
    contract.FASHN_RUNTIME_ERRORS,
    ids=[f"{row[0]}-{row[3]}" for row in contract.FASHN_RUNTIME_ERRORS],
)
def test_every_runtime_error_is_mapped(
    backend, name, message, error_class, job_code, shopper_fault
):
    responses.get(STATUS_URL, json=contract.fashn_failed_answer(PREDICTION, name, message))
    state = backend.query(PREDICTION)
    assert state.status == base.FAILED
    error = state.error
    assert type(error) is getattr(base, error_class)
    assert error.job_error_code == job_code
    assert error.shopper_fault is shopper_fault
    assert error.code == name
    assert error.message == message
    assert error.request_id == PREDICTION


@responses.activate
@pytest.mark.parametrize("error", [None, "PipelineError", {"name": 5}, []])
def test_a_failure_without_a_readable_error_is_the_providers(backend, error):
    responses.get(STATUS_URL, json={"id": PREDICTION, "status": "failed", "error": error})
    state = backend.query(PREDICTION)
    assert isinstance(state.error, base.TaskFailedError)
    assert not state.error.shopper_fault


@responses.activate
def test_the_prediction_id_is_quoted_into_the_path(backend):
    responses.get(
        BASE + contract.FASHN_STATUS_PATH + "a%3Fb%23c",
        json=contract.fashn_status_answer("a?b#c", "processing"),
    )
    assert backend.query("a?b#c").status == base.PROCESSING


@responses.activate
def test_credits_are_the_total(backend):
    responses.get(CREDITS_URL, json=contract.fashn_credits_answer(total=234))
    assert backend.credits().remaining == 234


@responses.activate
@pytest.mark.parametrize("answer", [{}, {"credits": 3}, {"credits": {"total": "3"}}])
def test_a_credits_answer_without_a_total(backend, answer):
    responses.get(CREDITS_URL, json=answer)
    with pytest.raises(base.InvalidResponseError):
        backend.credits()


# Webhooks: the status body, posted to the shop ------------------------------------------


def webhook(body, **extra):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return RequestFactory().post(
        "/tryon/callbacks/", data=data, content_type="application/json", **extra
    )


def test_a_completed_webhook_is_the_prediction_and_its_result(backend):
    body = contract.fashn_status_answer(
        PREDICTION, "completed", output=["https://cdn.fashn.ai/p/output_0.png"]
    )
    task_id, state = backend.parse_callback(webhook(body))
    assert task_id == PREDICTION
    assert state.status == base.SUCCEEDED
    assert state.result_url == "https://cdn.fashn.ai/p/output_0.png"


def test_a_failed_webhook_carries_the_runtime_error(backend):
    body = contract.fashn_failed_answer(PREDICTION, "PoseError", "No pose in the model image.")
    task_id, state = backend.parse_callback(webhook(body))
    assert task_id == PREDICTION
    assert state.status == base.FAILED
    assert state.error.job_error_code == "pose_not_detected"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b"[" * 50_000 + b"]" * 50_000,
        {"status": "completed", "output": ["https://cdn.fashn.ai/o.png"]},
        {"id": "", "status": "completed", "output": ["https://cdn.fashn.ai/o.png"]},
        {"id": "../../x", "status": "completed", "output": ["https://cdn.fashn.ai/o.png"]},
        {"id": PREDICTION * 10, "status": "completed", "output": ["https://x/o.png"]},
        {"id": PREDICTION, "status": "completed", "output": []},
        {"id": PREDICTION, "status": "completed", "output": ["javascript:alert(1)"]},
        {"id": PREDICTION, "status": "done"},
    ],
    ids=[
        "not json",
        "a list",
        "nested too deep",
        "no id",
        "empty id",
        "a path as id",
        "a long id",
        "no output",
        "a script URL",
        "an unknown status",
    ],
)
def test_a_malformed_webhook_is_refused(backend, body):
    with pytest.raises(base.RequestRejectedError):
        backend.parse_callback(webhook(body))


def test_an_oversized_webhook_is_refused_unread(backend):
    body = {"id": PREDICTION, "status": "processing", "pad": "x" * MAX_CALLBACK_BYTES}
    request = webhook(body)
    with pytest.raises(base.RequestRejectedError, match="too large"):
        backend.parse_callback(request)
    # Refused from its declared length: the body was never read.
    assert not request.META["wsgi.input"].read_started


@pytest.mark.parametrize("length", ["", "-1", "12abc"])
def test_a_webhook_whose_length_cannot_be_read_is_refused(backend, length):
    request = webhook(contract.fashn_status_answer(PREDICTION, "processing"))
    request.META["CONTENT_LENGTH"] = length
    with pytest.raises(base.RequestRejectedError):
        backend.parse_callback(request)


def test_fashn_pushes_and_ailab_does_not():
    from django_tryon.backends.ailab import AILabBackend

    assert FashnBackend.supports_callbacks
    assert not AILabBackend.supports_callbacks
    # None: the backend's own address, never TRYON's (here the tests' AILabAPI one).
    assert FashnBackend(api_key="k", base_url=None).base_url == "https://api.fashn.ai"
    assert FashnBackend(api_key="k").base_url == "https://api.tryon.test"
