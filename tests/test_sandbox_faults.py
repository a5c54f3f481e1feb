"""Each fault option of the sandbox changes what it answers; the control endpoint
changes them while it runs; the counters see everything."""

import time

import pytest
import requests

from django_tryon.backends import base
from django_tryon.backends.ailab import AILabBackend
from django_tryon.sandbox import SandboxServer, samples
from tests.support import contract
from tests.support.sandbox_client import KEY, query, submit, try_on_request


@pytest.fixture
def sandbox():
    with SandboxServer(processing_time=0, seed=7, result_mode="plain") as server:
        yield server


@pytest.fixture
def backend(sandbox):
    backend = AILabBackend(api_key=KEY, base_url=sandbox.url)
    yield backend
    backend.close()


def control(sandbox, **changes):
    response = requests.post(sandbox.url + "/_sandbox/control", json=changes, timeout=10)
    return response


def credits(sandbox):
    return requests.get(
        sandbox.url + contract.CREDITS_PATH, headers={contract.API_KEY_HEADER: KEY}, timeout=10
    )


def test_latency_delays_every_answer(sandbox):
    started = time.monotonic()
    credits(sandbox)
    fast = time.monotonic() - started
    control(sandbox, latency=0.4)
    started = time.monotonic()
    assert credits(sandbox).status_code == 200
    assert time.monotonic() - started >= 0.4 > fast
    assert sandbox.stats()["faults"]["latency"] == 1


def test_processing_time_applies_to_new_tasks(sandbox, backend, person_jpeg, garment_jpeg):
    quick = backend.submit(try_on_request(person_jpeg, garment_jpeg)).task_id
    control(sandbox, processing_time=30)
    slow = backend.submit(try_on_request(person_jpeg, garment_jpeg)).task_id
    assert backend.query(quick).status == base.SUCCEEDED
    assert backend.query(slow).status == base.QUEUED


def test_rate_limited_share_answers_429(sandbox, backend, person_jpeg, garment_jpeg):
    control(sandbox, rate_limited=1)
    response = submit(sandbox, person_jpeg, garment_jpeg)
    assert response.status_code == 429
    assert response.json()["error_detail"]["code"] == "EXCEEDING_LIMITS"
    with pytest.raises(base.RateLimitedError):
        backend.credits()
    assert sandbox.stats()["accepted"].get("submit", 0) == 0
    assert sandbox.stats()["faults"]["rate_limited"] == 2


def test_a_share_below_one_hits_some_requests_only(sandbox):
    control(sandbox, rate_limited=0.5)
    statuses = [credits(sandbox).status_code for _ in range(40)]
    assert 5 < statuses.count(429) < 35
    assert statuses.count(200) == 40 - statuses.count(429)


@pytest.mark.parametrize(
    "status, code",
    [
        (500, "PROCESSING_FAILURE"),
        (502, "AI_SERVICE_ERROR"),
        (503, "ERROR_INSUFFICIENT_RESOURCES"),
        (504, "AI_SERVICE_TIMEOUT"),
    ],
)
def test_server_errors_answer_the_documented_5xx(sandbox, backend, status, code):
    control(sandbox, server_errors=1, server_error_statuses=[status])
    response = credits(sandbox)
    assert response.status_code == status
    assert response.json()["error_detail"]["code"] == code
    with pytest.raises(base.ProviderUnavailableError):
        backend.credits()


def test_server_errors_pick_among_every_status_by_default(sandbox):
    control(sandbox, server_errors=1)
    assert {credits(sandbox).status_code for _ in range(40)} == {500, 502, 503, 504}


def test_fault_targets_limit_faults_to_some_requests(sandbox, backend, person_jpeg, garment_jpeg):
    control(sandbox, server_errors=1, fault_targets=["query"])
    task_id = backend.submit(try_on_request(person_jpeg, garment_jpeg)).task_id
    with pytest.raises(base.ProviderUnavailableError):
        backend.query(task_id)


@pytest.mark.parametrize("phase, tasks", [("after", 1), ("before", 0)])
def test_a_dropped_submit_may_or_may_not_have_made_its_task(
    sandbox, backend, person_jpeg, garment_jpeg, phase, tasks
):
    control(sandbox, drop=1, drop_phase=phase)
    with pytest.raises(base.ProviderConnectionError) as raised:
        backend.submit(try_on_request(person_jpeg, garment_jpeg))
    assert raised.value.in_doubt
    stats = sandbox.stats()
    assert sum(stats["tasks_by_person"].values()) == tasks
    assert stats["faults"]["drop"] == 1
    # The connection is gone, the server is not.
    control(sandbox, drop=0)
    assert backend.credits().remaining == 1_000_000 - tasks


def test_a_dropped_query_is_a_connection_error(sandbox, backend, person_jpeg, garment_jpeg):
    task_id = backend.submit(try_on_request(person_jpeg, garment_jpeg)).task_id
    control(sandbox, drop=1)
    with pytest.raises(base.ProviderConnectionError) as raised:
        backend.query(task_id)
    assert not raised.value.in_doubt


def test_task_failures_end_tasks_with_status_3(sandbox, backend, person_jpeg, garment_jpeg):
    control(sandbox, task_failures=1)
    task_id = backend.submit(try_on_request(person_jpeg, garment_jpeg)).task_id
    assert query(sandbox, task_id).json()["task_status"] == 3
    state = backend.query(task_id)
    assert state.status == base.FAILED
    assert isinstance(state.error, base.TaskFailedError)


def test_no_face_refuses_the_photo(sandbox, backend, person_jpeg, garment_jpeg):
    control(sandbox, no_face=1)
    response = submit(sandbox, person_jpeg, garment_jpeg)
    assert response.status_code == 422
    assert response.json()["error_detail"]["code"] == "ERROR_NO_FACE_IN_FILE"
    with pytest.raises(base.InvalidPhotoError) as raised:
        backend.submit(try_on_request(person_jpeg, garment_jpeg))
    assert raised.value.job_error_code == "no_face"
    assert sandbox.stats()["tasks_by_person"] == {}


def test_result_404_breaks_result_urls(sandbox, backend, person_jpeg, garment_jpeg):
    task_id = backend.submit(try_on_request(person_jpeg, garment_jpeg)).task_id
    url = backend.query(task_id).result_url
    control(sandbox, result_404=1)
    assert requests.get(url, timeout=10).status_code == 404
    control(sandbox, result_404=0)
    assert requests.get(url, timeout=10).status_code == 200
    assert sandbox.stats()["faults"]["result_404"] == 1


def test_max_rps_answers_429_beyond_the_limit(sandbox):
    control(sandbox, max_rps=3)
    statuses = [credits(sandbox).status_code for _ in range(6)]
    assert statuses.count(200) == 3
    assert statuses.count(429) == 3
    time.sleep(1.05)
    assert credits(sandbox).status_code == 200


def test_out_of_credits_refuses_submits(sandbox, backend, person_jpeg, garment_jpeg):
    control(sandbox, credits=1)
    backend.submit(try_on_request(person_jpeg, garment_jpeg))
    response = submit(sandbox, person_jpeg, garment_jpeg)
    assert response.status_code == 429
    assert response.json()["error_detail"]["code"] == "ERROR_NOT_ENOUGH_CREDITS"
    with pytest.raises(base.OutOfCreditsError):
        backend.submit(try_on_request(person_jpeg, garment_jpeg))
    assert backend.credits().remaining == 0


def test_counters_see_every_request_and_every_repeated_photo(
    sandbox, backend, person_jpeg, garment_jpeg
):
    other_person = samples.encode(samples.model_photo("dev"))
    task_id = backend.submit(try_on_request(person_jpeg, garment_jpeg)).task_id
    backend.submit(try_on_request(person_jpeg, garment_jpeg))
    backend.submit(try_on_request(other_person, garment_jpeg))
    backend.query(task_id)
    requests.get(backend.query(task_id).result_url, timeout=10)
    submit(sandbox, person_jpeg, garment_jpeg, data={"clothes_type": "hat"})
    stats = sandbox.stats()
    assert stats["requests"] == {"submit": 4, "query": 2, "download": 1}
    assert stats["accepted"] == {"submit": 3, "query": 2, "download": 1}
    assert stats["errors"] == {"ERROR_INVALID_PARAMETER": 1}
    assert sorted(stats["tasks_by_person"].values()) == [1, 2]
    assert list(sandbox.counters.duplicate_submits().values()) == [2]


# The control endpoint ------------------------------------------------------------------------


def test_control_shows_options_credits_and_counters(sandbox):
    state = requests.get(sandbox.url + "/_sandbox/control", timeout=10).json()
    assert state["options"]["processing_time"] == 0
    assert state["options"]["result_mode"] == "plain"
    assert state["credits"] == 1_000_000
    assert state["counters"]["requests"] == {}


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"rate_limited": 2}, "share"),
        ({"latency": -1}, ">= 0"),
        ({"latency": "slow"}, ">= 0"),
        ({"colour": "red"}, "Unknown option"),
        ({"result_mode": "fast"}, "result_mode"),
        ({"server_error_statuses": [418]}, "server_error_statuses"),
        ({"fault_targets": ["download"]}, "fault_targets"),
        ({"credits": -5}, "credits"),
    ],
)
def test_control_refuses_bad_values_and_changes_nothing(sandbox, changes, message):
    # A valid change beside the bad one is not applied either.
    response = control(sandbox, **{"processing_time": 5, **changes})
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert sandbox.options.processing_time == 0
    assert sandbox.options.rate_limited == 0
    assert sandbox.store.credits == 1_000_000


def test_control_refuses_a_body_that_is_not_an_object(sandbox):
    json_body = {"Content-Type": "application/json"}
    response = requests.post(
        sandbox.url + "/_sandbox/control", data=b"[1]", headers=json_body, timeout=10
    )
    assert response.status_code == 400
    response = requests.post(
        sandbox.url + "/_sandbox/control", data=b"{not json", headers=json_body, timeout=10
    )
    assert response.status_code == 400


def test_reset_restores_the_start_and_forgets_everything(
    sandbox, backend, person_jpeg, garment_jpeg
):
    backend.submit(try_on_request(person_jpeg, garment_jpeg))
    control(sandbox, rate_limited=1, credits=3, processing_time=9)
    state = requests.post(sandbox.url + "/_sandbox/reset", timeout=10).json()
    assert state["options"]["rate_limited"] == 0
    assert state["options"]["processing_time"] == 0
    assert state["credits"] == 1_000_000
    assert state["tasks"] == 0
    assert state["counters"]["requests"] == {}


def test_options_are_checked_at_start_too():
    with pytest.raises(ValueError, match="share"):
        SandboxServer(drop=1.5)


def test_control_refuses_an_oversized_body(sandbox):
    response = requests.post(
        sandbox.url + "/_sandbox/control",
        data=b" " * (100 * 1024),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 413
    assert response.headers["Connection"] == "close"
    assert sandbox.options.rate_limited == 0
