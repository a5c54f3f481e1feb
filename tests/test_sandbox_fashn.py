"""The sandbox speaking FASHN's protocol: raw requests against FASHN's documented
shapes, the FASHN backend against it, every fault, and webhooks."""

import base64
import json
import time

import pytest
import requests
from django.test import RequestFactory

from django_tryon.backends import base
from django_tryon.backends.fashn import FashnBackend
from django_tryon.sandbox import SandboxServer
from tests.support import contract
from tests.support.loopback import DrippingServer
from tests.support.receiver import Receiver
from tests.support.sandbox_client import try_on_request

KEY = "sandbox-fashn-key"


@pytest.fixture
def sandbox():
    with SandboxServer(protocol="fashn", processing_time=0, seed=3, result_mode="plain") as server:
        yield server


@pytest.fixture
def backend(sandbox):
    backend = FashnBackend(api_key=KEY, base_url=sandbox.url, options={})
    yield backend
    backend.close()


def data_uri(content, content_type="image/jpeg"):
    return f"data:{content_type};base64,{base64.b64encode(content).decode()}"


def run(sandbox, body, *, key=KEY, params=None):
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(
        sandbox.url + contract.FASHN_RUN_PATH,
        data=data,
        params=params,
        headers={**headers, "Content-Type": "application/json"},
        timeout=10,
    )


def run_body(person, garment, **inputs):
    return {
        "model_name": "tryon-v1.6",
        "inputs": {"model_image": data_uri(person), "garment_image": data_uri(garment), **inputs},
    }


def status(sandbox, prediction_id, key=KEY):
    return requests.get(
        sandbox.url + contract.FASHN_STATUS_PATH + prediction_id,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )


def assert_api_error(response, status_code, name):
    assert response.status_code == status_code
    assert set(response.json()) == {"error", "message"}
    assert response.json()["error"] == name


# The documented shapes ---------------------------------------------------------------


def test_a_run_then_its_status_in_the_documented_shapes(sandbox, person_jpeg, garment_jpeg):
    sandbox.configure(processing_time=30)
    answer = run(sandbox, run_body(person_jpeg, garment_jpeg, category="tops"))
    assert answer.status_code == 200
    assert set(answer.json()) == {"id", "error"}
    assert answer.json()["error"] is None
    prediction = answer.json()["id"]

    in_flight = status(sandbox, prediction).json()
    assert in_flight["id"] == prediction
    assert in_flight["status"] in contract.FASHN_IN_FLIGHT
    assert in_flight["error"] is None


def test_a_finished_prediction_points_to_its_picture(sandbox, person_jpeg, garment_jpeg):
    prediction = run(sandbox, run_body(person_jpeg, garment_jpeg)).json()["id"]
    answer = status(sandbox, prediction).json()
    assert answer == contract.fashn_status_answer(prediction, "completed", output=answer["output"])
    picture = requests.get(answer["output"][0], timeout=10)
    assert picture.status_code == 200
    assert picture.content[:2] == b"\xff\xd8"


def test_the_backend_round_trip_in_composite_mode(person_jpeg, garment_jpeg):
    with SandboxServer(protocol="fashn", processing_time=0) as sandbox:
        backend = FashnBackend(api_key=KEY, base_url=sandbox.url, options={"mode": "quality"})
        try:
            task_id = backend.submit(try_on_request(person_jpeg, garment_jpeg)).task_id
            state = backend.query(task_id)
        finally:
            backend.close()
        assert state.status == base.SUCCEEDED
        picture = requests.get(state.result_url, timeout=30).content
        assert picture[:2] == b"\xff\xd8"
        assert sandbox.stats()["tasks_by_person"]  # the photo reached the task


def test_credits_answer_the_documented_shape(sandbox, backend):
    sandbox.configure(credits=12)
    answer = requests.get(
        sandbox.url + contract.FASHN_CREDITS_PATH,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    ).json()
    assert answer == contract.fashn_credits_answer(total=12, subscription=0, on_demand=12)
    assert backend.credits().remaining == 12


# What it refuses, as FASHN does ---------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer "}, {"Authorization": f"Basic {KEY}"}, {"Authorization": KEY}],
)
def test_a_missing_or_malformed_key_is_unauthorized(sandbox, headers):
    response = requests.get(sandbox.url + contract.FASHN_CREDITS_PATH, headers=headers, timeout=10)
    assert_api_error(response, 401, "UnauthorizedAccess")


def test_only_the_configured_key_is_accepted(person_jpeg, garment_jpeg):
    with SandboxServer(protocol="fashn", api_key="the-key", processing_time=0) as sandbox:
        refused = run(sandbox, run_body(person_jpeg, garment_jpeg), key="another")
        assert_api_error(refused, 401, "UnauthorizedAccess")
        assert run(sandbox, run_body(person_jpeg, garment_jpeg), key="the-key").status_code == 200


@pytest.mark.parametrize(
    "change",
    [
        lambda body: b"{not json",
        lambda body: b"[" * 100_000 + b"]" * 100_000,
        lambda body: {**body, "model_name": "tryon-v0"},
        lambda body: {"model_name": "tryon-v1.6"},
        lambda body: {**body, "inputs": {**body["inputs"], "garment_image": ""}},
        lambda body: {**body, "inputs": {**body["inputs"], "category": "hats"}},
        lambda body: {**body, "inputs": {**body["inputs"], "mode": "turbo"}},
        lambda body: {**body, "inputs": {**body["inputs"], "segmentation_free": "no"}},
        lambda body: {**body, "inputs": {**body["inputs"], "num_samples": 9}},
        lambda body: {**body, "inputs": {**body["inputs"], "seed": -1}},
    ],
    ids=[
        "not json",
        "nested too deep",
        "unknown model",
        "no inputs",
        "empty garment",
        "unknown category",
        "unknown mode",
        "not a boolean",
        "too many samples",
        "negative seed",
    ],
)
def test_a_bad_run_is_a_bad_request_and_costs_nothing(sandbox, person_jpeg, garment_jpeg, change):
    response = run(sandbox, change(run_body(person_jpeg, garment_jpeg)))
    assert_api_error(response, 400, "BadRequest")
    assert sandbox.state()["tasks"] == 0
    assert sandbox.store.credits == sandbox.store.initial_credits


@pytest.mark.parametrize(
    "image",
    ["https://example.com/model.jpg", "saved:ava", "data:image/jpeg;base64,@@@", data_uri(b"text")],
    ids=["a URL", "a saved name", "bad base64", "not an image"],
)
def test_a_photo_that_cannot_be_loaded_fails_the_prediction(sandbox, backend, garment_jpeg, image):
    body = run_body(b"", garment_jpeg)
    body["inputs"]["model_image"] = image
    prediction = run(sandbox, body).json()["id"]
    answer = status(sandbox, prediction).json()
    assert answer["status"] == "failed"
    assert answer["error"]["name"] == "ImageLoadError"
    assert "model image" in answer["error"]["message"]
    state = backend.query(prediction)
    assert state.error.job_error_code == "photo_unreadable"
    assert state.error.shopper_fault


def test_an_unknown_or_another_keys_prediction_is_not_found(sandbox, person_jpeg, garment_jpeg):
    assert_api_error(status(sandbox, "nope"), 404, "NotFound")
    prediction = run(sandbox, run_body(person_jpeg, garment_jpeg)).json()["id"]
    assert_api_error(status(sandbox, prediction, key="someone-else"), 404, "NotFound")


def test_no_credits_left(sandbox, backend, person_jpeg, garment_jpeg):
    sandbox.configure(credits=0)
    assert_api_error(run(sandbox, run_body(person_jpeg, garment_jpeg)), 429, "OutOfCredits")
    with pytest.raises(base.OutOfCreditsError):
        backend.submit(try_on_request(person_jpeg, garment_jpeg))


# Faults -----------------------------------------------------------------------------------


def test_rate_limits(sandbox, backend, person_jpeg, garment_jpeg):
    sandbox.configure(rate_limited=1)
    assert_api_error(run(sandbox, run_body(person_jpeg, garment_jpeg)), 429, "RateLimitExceeded")
    with pytest.raises(base.RateLimitedError):
        backend.credits()
    assert sandbox.stats()["errors"]["RateLimitExceeded"] == 2


@pytest.mark.parametrize("code", [500, 503])
def test_server_errors(sandbox, backend, code):
    sandbox.configure(server_errors=1, server_error_statuses=[code])
    response = requests.get(
        sandbox.url + contract.FASHN_CREDITS_PATH,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    )
    assert_api_error(response, code, "InternalServerError")
    with pytest.raises(base.ProviderUnavailableError):
        backend.credits()


def test_a_dropped_run_after_the_prediction_exists_is_in_doubt(
    sandbox, backend, person_jpeg, garment_jpeg
):
    sandbox.configure(drop=1, drop_phase="after", fault_targets=["submit"])
    with pytest.raises(base.ProviderConnectionError) as raised:
        backend.submit(try_on_request(person_jpeg, garment_jpeg))
    assert raised.value.in_doubt
    assert sandbox.state()["tasks"] == 1


def test_task_failures_end_in_a_pipeline_error(sandbox, backend, person_jpeg, garment_jpeg):
    sandbox.configure(task_failures=1)
    state = backend.query(backend.submit(try_on_request(person_jpeg, garment_jpeg)).task_id)
    assert state.status == base.FAILED
    assert state.error.code == "PipelineError"
    assert not state.error.shopper_fault


def test_no_face_is_found_while_running_as_a_pose_error(
    sandbox, backend, person_jpeg, garment_jpeg
):
    sandbox.configure(no_face=1)
    submission = backend.submit(
        try_on_request(person_jpeg, garment_jpeg)
    )  # accepted, as FASHN does
    state = backend.query(submission.task_id)
    assert state.error.code == "PoseError"
    assert state.error.job_error_code == "pose_not_detected"
    assert sandbox.stats()["faults"]["no_face"] == 1


def test_result_404(sandbox, backend, person_jpeg, garment_jpeg):
    sandbox.configure(result_404=1)
    state = backend.query(backend.submit(try_on_request(person_jpeg, garment_jpeg)).task_id)
    assert requests.get(state.result_url, timeout=10).status_code == 404


def test_max_rps(sandbox):
    sandbox.configure(max_rps=2)
    answers = [
        requests.get(
            sandbox.url + contract.FASHN_CREDITS_PATH,
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=10,
        ).status_code
        for _ in range(6)
    ]
    assert 429 in answers


# Webhooks --------------------------------------------------------------------------------


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.stop()


def test_a_webhook_delivers_the_status_body_the_backend_reads(
    sandbox, backend, receiver, person_jpeg, garment_jpeg
):
    submission = backend.submit(
        try_on_request(person_jpeg, garment_jpeg), callback_url=receiver.url
    )
    assert receiver.wait_for(1)
    path, headers, body = receiver.deliveries[0]
    assert path == "/tryon/callbacks/fashn/secret/"
    assert headers["Content-Type"] == "application/json"
    answer = json.loads(body)
    assert answer["id"] == submission.task_id
    assert answer["status"] == "completed"
    request = RequestFactory().post(path, data=body, content_type="application/json")
    task_id, state = backend.parse_callback(request)
    assert (task_id, state.status) == (submission.task_id, base.SUCCEEDED)
    assert state.result_url == status(sandbox, task_id).json()["output"][0]


def test_a_failed_prediction_is_delivered_too(
    sandbox, backend, receiver, person_jpeg, garment_jpeg
):
    sandbox.configure(task_failures=1)
    backend.submit(try_on_request(person_jpeg, garment_jpeg), callback_url=receiver.url)
    assert receiver.wait_for(1)
    assert json.loads(receiver.deliveries[0][2])["error"]["name"] == "PipelineError"


def test_a_refused_delivery_is_retried_until_accepted(sandbox, backend, person_jpeg, garment_jpeg):
    receiver = Receiver(statuses=[500, 404])
    try:
        sandbox.configure(webhook_retry_interval=0.01)
        backend.submit(try_on_request(person_jpeg, garment_jpeg), callback_url=receiver.url)
        assert receiver.wait_for(3)
        time.sleep(0.2)  # no fourth: the third was accepted
        assert len(receiver.deliveries) == 3
        assert len({body for _, _, body in receiver.deliveries}) == 1
        assert sandbox.stats()["webhooks"] == {"sent": 3, "refused": 2, "accepted": 1}
    finally:
        receiver.stop()


def test_deliveries_stop_after_five_retries(sandbox, backend, person_jpeg, garment_jpeg):
    receiver = Receiver(statuses=[503] * 10)
    try:
        sandbox.configure(webhook_retry_interval=0.001)
        backend.submit(try_on_request(person_jpeg, garment_jpeg), callback_url=receiver.url)
        deadline = time.monotonic() + 10
        while sandbox.stats()["webhooks"].get("gave_up") != 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(receiver.deliveries) == 6
        assert sandbox.stats()["webhooks"]["gave_up"] == 1
    finally:
        receiver.stop()


def test_a_missing_webhook_is_never_sent(sandbox, backend, receiver, person_jpeg, garment_jpeg):
    sandbox.configure(webhook_missing=1)
    task_id = backend.submit(
        try_on_request(person_jpeg, garment_jpeg), callback_url=receiver.url
    ).task_id
    assert backend.query(task_id).status == base.SUCCEEDED  # polling still finds it
    assert sandbox.webhooks.pending() == 0
    assert sandbox.stats()["faults"]["webhook_missing"] == 1
    assert receiver.deliveries == []


def test_a_duplicate_webhook_is_sent_twice(sandbox, backend, receiver, person_jpeg, garment_jpeg):
    sandbox.configure(webhook_duplicate=1)
    backend.submit(try_on_request(person_jpeg, garment_jpeg), callback_url=receiver.url)
    assert receiver.wait_for(2)
    assert receiver.deliveries[0][2] == receiver.deliveries[1][2]


def test_a_late_webhook_waits_after_the_task_ends(
    sandbox, backend, receiver, person_jpeg, garment_jpeg
):
    sandbox.configure(webhook_delay=60)
    task_id = backend.submit(
        try_on_request(person_jpeg, garment_jpeg), callback_url=receiver.url
    ).task_id
    assert backend.query(task_id).status == base.SUCCEEDED
    assert not receiver.arrived.wait(0.3)
    assert sandbox.webhooks.pending() == 1
    sandbox.reset()  # forgets pending deliveries too
    assert sandbox.webhooks.pending() == 0


@pytest.mark.parametrize(
    "url",
    ["http://192.0.2.10/hook", "ftp://127.0.0.1/hook", "not a url", "http://127.0.0.1:99999/"],
)
def test_webhooks_go_to_loopback_http_only(sandbox, person_jpeg, garment_jpeg, url):
    response = run(sandbox, run_body(person_jpeg, garment_jpeg), params={"webhook_url": url})
    assert_api_error(response, 400, "BadRequest")
    assert sandbox.state()["tasks"] == 0


def test_a_body_that_cannot_be_made_is_given_up_and_the_sender_goes_on(receiver):
    from types import SimpleNamespace

    from django_tryon.sandbox.faults import FaultInjector, Options
    from django_tryon.sandbox.stats import Counters
    from django_tryon.sandbox.webhooks import WebhookSender

    options, counters = Options(), Counters()
    sender = WebhookSender(options, FaultInjector(options, seed=1), counters)
    try:
        task = SimpleNamespace(webhook_url=receiver.url, finishes_at=0.0)
        sender.schedule(task, lambda task: 1 / 0)
        sender.schedule(task, lambda task: {"id": "second"})
        assert receiver.wait_for(1)
        assert json.loads(receiver.deliveries[0][2]) == {"id": "second"}
        assert counters.snapshot()["webhooks"]["gave_up"] == 1
    finally:
        sender.stop()


def test_a_receiver_dripping_its_answer_is_cut_off_and_the_deliveries_behind_it_go_on(
    receiver, monkeypatch
):
    from types import SimpleNamespace

    from django_tryon.sandbox import webhooks
    from django_tryon.sandbox.faults import FaultInjector, Options
    from django_tryon.sandbox.stats import Counters

    # Its status line a byte every 0.2 s: 20 s in all, each byte within the 1 s timeout.
    slow = DrippingServer(
        b"HTTP/1.1 200 OK\r\nContent-Length: 0" + b" " * 60 + b"\r\n", b"", "headers"
    )
    monkeypatch.setattr(webhooks, "DELIVERY_TIMEOUT", 1.0)
    options, counters = Options(), Counters()
    sender = webhooks.WebhookSender(options, FaultInjector(options, seed=1), counters)
    try:
        sender.schedule(SimpleNamespace(webhook_url=slow.url, finishes_at=0.0), lambda t: {})
        sender.schedule(
            SimpleNamespace(webhook_url=receiver.url, finishes_at=0.0), lambda t: {"id": "next"}
        )
        assert receiver.wait_for(1, timeout=10)  # not after the slow one's 20 s
        assert json.loads(receiver.deliveries[0][2]) == {"id": "next"}
        assert counters.snapshot()["webhooks"]["refused"] == 1  # to be tried again
        assert slow.requests == 1
    finally:
        sender.stop()
        slow.stop()
