"""The sandbox speaking fal's queue: the fal backend against it for both models, every
fault, cancel, and webhooks signed with the sandbox's key, checked with its JWKS."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.test import RequestFactory

from django_tryon.backends import base
from django_tryon.backends.fal import FalBackend
from django_tryon.backends.fal_signature import forget_key_sets
from django_tryon.sandbox import SandboxServer
from django_tryon.sandbox.fal import JWKS_PATH
from tests.support import contract
from tests.support.receiver import Receiver
from tests.support.sandbox_client import try_on_request

KEY = "sandbox-fal-key"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def fresh_keys():
    forget_key_sets()
    yield
    forget_key_sets()


@pytest.fixture
def sandbox():
    with SandboxServer(protocol="fal", processing_time=0, seed=5, result_mode="plain") as server:
        yield server


def make_backend(sandbox, model=contract.FAL_FASHN_MODEL):
    return FalBackend(
        api_key=KEY,
        base_url=sandbox.url,
        options={"model": model, "jwks_url": sandbox.url + JWKS_PATH},
    )


@pytest.fixture
def backend(sandbox):
    backend = make_backend(sandbox)
    yield backend
    backend.close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.mark.parametrize("model", [contract.FAL_FASHN_MODEL, contract.FAL_KOLORS_MODEL])
def test_a_request_goes_from_submit_to_a_downloadable_picture(
    sandbox, model, person_jpeg, garment_jpeg
):
    backend = make_backend(sandbox, model)
    try:
        submission = backend.submit(try_on_request(person_jpeg, garment_jpeg))
        state = backend.query(submission.task_id)
    finally:
        backend.close()
    assert state.status == base.SUCCEEDED
    picture = requests.get(state.result_url, timeout=10)
    assert (picture.status_code, picture.headers["Content-Type"]) == (200, "image/jpeg")
    assert sandbox.stats()["requests"]["result"] == 1


def test_the_status_is_202_until_the_request_is_done(sandbox, backend, person_jpeg, garment_jpeg):
    sandbox.configure(processing_time=60)
    task_id = backend.submit(try_on_request(person_jpeg, garment_jpeg)).task_id
    answer = requests.get(
        f"{sandbox.url}/fal-ai/fashn/requests/{task_id}/status",
        headers={"Authorization": f"Key {KEY}"},
        timeout=10,
    )
    assert answer.status_code == 202
    assert answer.json()["status"] == "IN_QUEUE"
    early = requests.get(
        f"{sandbox.url}/fal-ai/fashn/requests/{task_id}",
        headers={"Authorization": f"Key {KEY}"},
        timeout=10,
    )
    assert early.status_code == 400  # no result yet


FAULTS = [
    ({"no_face": 1}, "state", base.InvalidPhotoError, "no_face"),
    ({"task_failures": 1}, "state", base.TaskFailedError, "task_failed"),
    ({"credits": 0}, "submit", base.OutOfCreditsError, "out_of_credits"),
    ({"rate_limited": 1}, "submit", base.RateLimitedError, "provider_unavailable"),
    ({"server_errors": 1}, "submit", base.ProviderUnavailableError, "provider_unavailable"),
]


@pytest.mark.parametrize(
    ("fault", "where", "error_class", "job_code"),
    FAULTS,
    ids=["no face", "task failure", "no credits", "rate limited", "server error"],
)
def test_every_fault_reaches_the_backend_as_fal_words_it(
    sandbox, backend, person_jpeg, garment_jpeg, fault, where, error_class, job_code
):
    sandbox.configure(**fault)
    if where == "submit":
        with pytest.raises(error_class) as raised:
            backend.submit(try_on_request(person_jpeg, garment_jpeg))
        error = raised.value
    else:
        task_id = backend.submit(try_on_request(person_jpeg, garment_jpeg)).task_id
        state = backend.query(task_id)
        assert state.status == base.FAILED
        error = state.error
    assert isinstance(error, error_class)
    assert error.job_error_code == job_code


def test_a_wrong_key_is_refused(sandbox, person_jpeg, garment_jpeg):
    sandbox_backend = FalBackend(api_key="", base_url=sandbox.url, options={})
    try:
        with pytest.raises(base.ConfigurationError):
            sandbox_backend.submit(try_on_request(person_jpeg, garment_jpeg))
    finally:
        sandbox_backend.close()


def test_an_unreadable_photo_fails_the_request_as_the_shoppers(sandbox, backend, garment_jpeg):
    task_id = backend.submit(try_on_request(b"not a picture", garment_jpeg)).task_id
    error = backend.query(task_id).error
    assert isinstance(error, base.InvalidPhotoError)
    assert error.job_error_code == "photo_unreadable"


def test_cancel_ends_a_running_request_and_then_has_nothing_to_do(
    sandbox, backend, person_jpeg, garment_jpeg
):
    sandbox.configure(processing_time=60)
    task_id = backend.submit(try_on_request(person_jpeg, garment_jpeg)).task_id
    backend.cancel(task_id)
    state = backend.query(task_id)
    assert state.status == base.FAILED  # fal reports the request done, without a picture
    backend.cancel(task_id)  # ALREADY_COMPLETED: nothing more to do
    assert sandbox.stats()["requests"]["cancel"] == 2


def test_the_signed_webhook_is_checked_with_the_sandboxs_published_key(
    sandbox, backend, receiver, person_jpeg, garment_jpeg
):
    submission = backend.submit(
        try_on_request(person_jpeg, garment_jpeg), callback_url=receiver.url
    )
    assert receiver.wait_for(1)
    path, headers, body = receiver.deliveries[0]
    assert json.loads(body)["status"] == "OK"
    assert headers["X-Fal-Webhook-Request-Id"] == submission.task_id
    request = RequestFactory().post(
        path, data=body, content_type="application/json", headers=_signed(headers)
    )
    task_id, state = backend.parse_callback(request)
    assert (task_id, state.status) == (submission.task_id, base.SUCCEEDED)
    assert requests.get(state.result_url, timeout=10).status_code == 200
    assert sandbox.stats()["requests"]["jwks"] == 1

    changed = body.replace(b'"OK"', b'"ERROR"')  # what a forger on the path would do
    forged = RequestFactory().post(
        path, data=changed, content_type="application/json", headers=_signed(headers)
    )
    with pytest.raises(base.RequestRejectedError, match="does not verify"):
        backend.parse_callback(forged)


def test_a_failed_request_is_delivered_with_its_model_error(
    sandbox, backend, receiver, person_jpeg, garment_jpeg
):
    sandbox.configure(no_face=1)
    backend.submit(try_on_request(person_jpeg, garment_jpeg), callback_url=receiver.url)
    assert receiver.wait_for(1)
    path, headers, body = receiver.deliveries[0]
    request = RequestFactory().post(
        path, data=body, content_type="application/json", headers=_signed(headers)
    )
    _, state = backend.parse_callback(request)
    assert state.status == base.FAILED
    assert state.error.job_error_code == "no_face"


def test_a_callback_beyond_loopback_is_refused(sandbox, backend, person_jpeg, garment_jpeg):
    with pytest.raises(base.RequestRejectedError):
        backend.submit(
            try_on_request(person_jpeg, garment_jpeg), callback_url="https://shop.example.com/x"
        )


def test_the_command_speaks_fal():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "django", "tryon_sandbox", "--port", "0", "--protocol", "fal"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
        second_line = process.stdout.readline()
        assert "FalBackend" in second_line and f"{url}{JWKS_PATH}" in second_line
        # As docs/sandbox.md shows it (there on port 8765).
        shown = (ROOT / "docs" / "sandbox.md").read_text()
        assert second_line.replace(url, "http://127.0.0.1:8765") in shown
        keys = requests.get(url + JWKS_PATH, timeout=10).json()["keys"]
        assert [(key["kty"], key["crv"]) for key in keys] == [("OKP", "Ed25519")]
        state = requests.get(url + "/_sandbox/control", timeout=10).json()
        assert state["protocol"] == "fal"
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def _signed(headers):
    return {name: value for name, value in headers.items() if name.startswith("X-Fal-")}
