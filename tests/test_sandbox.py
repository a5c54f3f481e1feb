"""The sandbox provider against AILabAPI's documented contract, driven by raw
requests and by the real backend."""

import io
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from PIL import Image

from django_tryon.backends import base
from django_tryon.backends.ailab import AILabBackend
from django_tryon.sandbox import SandboxServer, samples
from django_tryon.sandbox.server import NotLoopbackError
from tests.support import contract
from tests.support.sandbox_client import KEY, query, submit, try_on_request


@pytest.fixture
def sandbox():
    with SandboxServer(processing_time=0, seed=1) as server:
        yield server


@pytest.fixture
def backend(sandbox):
    backend = AILabBackend(api_key=KEY, base_url=sandbox.url)
    yield backend
    backend.close()


def assert_error(response, status, code):
    assert response.status_code == status
    answer = response.json()
    assert set(answer) == set(contract.error_answer(status, code))
    assert set(answer["error_detail"]) == contract.ERROR_DETAIL_KEYS
    assert answer["error_code"] == status
    assert answer["error_detail"]["status_code"] == status
    assert answer["error_detail"]["code"] == code
    assert answer["error_detail"]["message"]
    return answer


# The documented answers ----------------------------------------------------------------


def test_submit_answers_the_documented_shape(sandbox, person_jpeg, garment_jpeg):
    response = submit(sandbox, person_jpeg, garment_jpeg)
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == set(contract.submit_answer())
    assert set(answer) >= contract.PUBLIC_KEYS
    assert set(answer["error_detail"]) == contract.ERROR_DETAIL_KEYS
    assert answer["error_code"] == 0
    assert answer["task_type"] == "async"
    assert isinstance(answer["task_id"], str) and len(answer["task_id"]) >= 16


def test_query_answers_each_task_status_in_the_documented_shape(sandbox, person_jpeg, garment_jpeg):
    sandbox.configure(processing_time=0.8)
    task_id = submit(sandbox, person_jpeg, garment_jpeg).json()["task_id"]
    seen = {}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        answer = query(sandbox, task_id).json()
        seen.setdefault(answer["task_status"], answer)
        if answer["task_status"] == 2:
            break
        time.sleep(0.05)
    assert list(seen) == [0, 1, 2]  # queued, then processing, then succeeded
    for status, answer in seen.items():
        assert set(answer) == set(contract.query_answer(status, "x"))
        assert answer["error_code"] == 0
    assert seen[2]["data"]["image"].startswith(sandbox.url + "/results/")


def test_credits_answer_carries_the_balance(sandbox, person_jpeg, garment_jpeg):
    response = requests.get(
        sandbox.url + contract.CREDITS_PATH, headers={contract.API_KEY_HEADER: KEY}, timeout=10
    )
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) >= contract.PUBLIC_KEYS
    before = answer["data"]["remaining_credits"]
    submit(sandbox, person_jpeg, garment_jpeg)
    after = requests.get(
        sandbox.url + contract.CREDITS_PATH, headers={contract.API_KEY_HEADER: KEY}, timeout=10
    ).json()["data"]["remaining_credits"]
    assert after == before - 1


# Driven by the real backend ---------------------------------------------------------------


def test_the_backend_submits_queries_and_downloads_a_real_picture(
    sandbox, backend, person_jpeg, garment_jpeg
):
    sandbox.configure(processing_time=0.3)
    submission = backend.submit(try_on_request(person_jpeg, garment_jpeg))
    assert backend.query(submission.task_id).status in (base.QUEUED, base.PROCESSING)
    time.sleep(0.35)
    state = backend.query(submission.task_id)
    assert state.status == base.SUCCEEDED
    # Served by the sandbox's own host, under a long random token.
    assert state.result_url.startswith(sandbox.url + "/results/")
    token = state.result_url.rsplit("/", 1)[1].removesuffix(".jpg")
    assert len(token) >= 40
    first = requests.get(state.result_url, timeout=30)
    assert first.status_code == 200
    assert first.headers["Content-Type"] == "image/jpeg"
    with Image.open(io.BytesIO(first.content)) as picture:
        assert picture.format == "JPEG"
        assert picture.size == samples.MODEL_SIZE
    # Made once, then served from the cache.
    assert requests.get(state.result_url, timeout=10).content == first.content


def test_the_backend_reads_the_credits(sandbox, backend, person_jpeg, garment_jpeg):
    sandbox.configure(credits=42)
    assert backend.credits().remaining == 42
    backend.submit(try_on_request(person_jpeg, garment_jpeg))
    assert backend.credits().remaining == 41


def test_plain_result_mode_serves_a_small_picture_and_keeps_no_uploads(
    sandbox, backend, person_jpeg, garment_jpeg
):
    sandbox.configure(result_mode="plain")
    task_id = backend.submit(try_on_request(person_jpeg, garment_jpeg)).task_id
    task = sandbox.store.get(task_id, KEY, sandbox.options.result_ttl)
    assert task.person_image == task.clothes_image == b""
    picture = requests.get(backend.query(task_id).result_url, timeout=10)
    assert picture.status_code == 200
    with Image.open(io.BytesIO(picture.content)) as image:
        assert image.size == (256, 512)


# Refusals: the documented error table --------------------------------------------------------


@pytest.mark.parametrize("key", [None, "", "wrong"])
def test_a_missing_or_wrong_key_is_401(person_jpeg, garment_jpeg, key):
    with SandboxServer(api_key=KEY) as sandbox:
        response = submit(sandbox, person_jpeg, garment_jpeg, key=key)
        assert_error(response, 401, "ERROR_APPLICATIONS_NOT_EXISTS")
        assert submit(sandbox, person_jpeg, garment_jpeg).status_code == 200


def test_any_non_empty_key_is_accepted_by_default_but_tasks_stay_per_key(
    sandbox, person_jpeg, garment_jpeg
):
    task_id = submit(sandbox, person_jpeg, garment_jpeg, key="any").json()["task_id"]
    assert query(sandbox, task_id, key="any").status_code == 200
    assert_error(query(sandbox, task_id, key="other"), 400, "ERROR_INVALID_PARAMETER")


@pytest.mark.parametrize("missing", ["task_type", "clothes_type"])
def test_a_missing_field_is_400(sandbox, person_jpeg, garment_jpeg, missing):
    response = submit(sandbox, person_jpeg, garment_jpeg, data={missing: None})
    answer = assert_error(response, 400, "MISSING_PARAMETERS")
    assert missing in answer["error_detail"]["message"]


@pytest.mark.parametrize("missing", ["person_image", "clothes_image"])
def test_a_missing_file_is_400(sandbox, person_jpeg, garment_jpeg, missing):
    response = submit(sandbox, person_jpeg, garment_jpeg, files={missing: None})
    assert_error(response, 400, "MISSING_PARAMETERS")


@pytest.mark.parametrize(
    "data", [{"clothes_type": "hat"}, {"task_type": "sync"}], ids=["clothes_type", "task_type"]
)
def test_a_bad_value_is_400_invalid_parameter(sandbox, person_jpeg, garment_jpeg, data):
    assert_error(
        submit(sandbox, person_jpeg, garment_jpeg, data=data), 400, "ERROR_INVALID_PARAMETER"
    )


def test_an_empty_file_is_400(sandbox, garment_jpeg):
    response = submit(sandbox, b"", garment_jpeg)
    assert_error(response, 400, "PARAMETERS_CANNOT_EMPTY")


def _image_bytes(size, image_format="PNG", noise=False):
    image = Image.new("RGB", size, (120, 130, 140))
    if noise:
        image = Image.frombytes("RGB", size, bytes(range(256)) * (size[0] * size[1] * 3 // 256))
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def test_a_file_over_3_mb_is_413(sandbox, garment_jpeg):
    big = _image_bytes((1100, 1100), "BMP")  # 3.6 MB
    response = submit(sandbox, big, garment_jpeg)
    assert_error(response, 413, "FILE_SIZE_EXCEEDS_LIMIT")


@pytest.mark.parametrize("size", [(4096, 100), (100, 4096)])
def test_a_side_of_4096_pixels_is_413(sandbox, garment_jpeg, size):
    response = submit(sandbox, _image_bytes(size), garment_jpeg)
    assert_error(response, 413, "FILE_RESOLUTION_EXCEEDS_LIMITS")


def test_a_side_just_under_4096_is_taken(sandbox, garment_jpeg):
    assert submit(sandbox, _image_bytes((4095, 64)), garment_jpeg).status_code == 200


@pytest.mark.parametrize(
    "content", [b"plain text, not a picture", _image_bytes((64, 64), "GIF")], ids=["text", "gif"]
)
def test_a_file_that_is_not_a_jpeg_or_png_is_415(sandbox, garment_jpeg, content):
    assert_error(submit(sandbox, content, garment_jpeg), 415, "UNSUPPORTED_FILE_TYPES")


def test_a_truncated_jpeg_is_422(sandbox, person_jpeg, garment_jpeg):
    response = submit(sandbox, person_jpeg, garment_jpeg[: len(garment_jpeg) // 3])
    assert_error(response, 422, "FILE_DECODING_FAILURE")


def test_an_unknown_path_is_404(sandbox):
    response = requests.get(sandbox.url + "/api/unknown", timeout=10)
    assert_error(response, 404, "ERROR_AI_NOT_EXISTS")


def test_an_unknown_task_is_refused(sandbox):
    assert_error(query(sandbox, "no-such-task"), 400, "ERROR_INVALID_PARAMETER")
    response = requests.get(
        sandbox.url + contract.QUERY_PATH, headers={contract.API_KEY_HEADER: KEY}, timeout=10
    )
    assert_error(response, 400, "MISSING_PARAMETERS")


def test_a_non_multipart_submit_is_400(sandbox):
    response = requests.post(
        sandbox.url + contract.SUBMIT_PATH,
        headers={contract.API_KEY_HEADER: KEY},
        json={"task_type": "async"},
        timeout=10,
    )
    assert_error(response, 400, "ERROR_PARAMETERS")


@pytest.mark.parametrize(
    "files, error_class",
    [
        ({"person_image": ("p.txt", b"text", "text/plain")}, base.InvalidPhotoError),
        ({"clothes_image": None}, base.RequestRejectedError),
    ],
)
def test_the_backend_classifies_the_sandbox_refusals_as_the_contract_says(
    sandbox, person_jpeg, garment_jpeg, files, error_class
):
    response = submit(sandbox, person_jpeg, garment_jpeg, files=files)
    code = response.json()["error_detail"]["code"]
    expected = {row[1]: row[2] for row in contract.ERROR_TABLE if row[0] == response.status_code}
    assert error_class.__name__ == expected[code]


# Expiry ------------------------------------------------------------------------------------------


def test_results_expire_like_the_providers(sandbox, backend, person_jpeg, garment_jpeg):
    sandbox.configure(result_ttl=0.3)
    task_id = backend.submit(try_on_request(person_jpeg, garment_jpeg)).task_id
    url = backend.query(task_id).result_url
    time.sleep(0.35)
    assert requests.get(url, timeout=10).status_code == 404
    with pytest.raises(base.RequestRejectedError):
        backend.query(task_id)


def test_the_default_ttl_is_24_hours(sandbox):
    assert sandbox.options.result_ttl == 24 * 60 * 60


# Serving many ------------------------------------------------------------------------------------


def test_slow_answers_do_not_hold_up_other_clients(sandbox, person_jpeg, garment_jpeg):
    task_id = submit(sandbox, person_jpeg, garment_jpeg).json()["task_id"]
    sandbox.configure(latency=0.3)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=40) as pool:
        statuses = list(pool.map(lambda _: query(sandbox, task_id).status_code, range(40)))
    # 40 answers of 0.3 s each, at once: well under the 12 s they would take in turn.
    assert statuses == [200] * 40
    assert time.monotonic() - started < 6


def test_connections_are_kept_alive(sandbox, person_jpeg, garment_jpeg):
    task_id = submit(sandbox, person_jpeg, garment_jpeg).json()["task_id"]
    before = sandbox.stats()["connections"]
    with requests.Session() as session:
        session.headers[contract.API_KEY_HEADER] = KEY
        for _ in range(5):
            response = session.get(sandbox.url + contract.QUERY_PATH, params={"task_id": task_id})
            assert response.status_code == 200
        # An error answer keeps the connection too.
        assert session.get(sandbox.url + contract.QUERY_PATH).status_code == 400
        assert session.get(sandbox.url + contract.CREDITS_PATH).status_code == 200
    assert sandbox.stats()["connections"] == before + 1


def test_kept_alive_answers_come_without_delay(sandbox, person_jpeg, garment_jpeg):
    # Without TCP_NODELAY each answer would wait ~40 ms for a delayed ACK: 100 take 4 s.
    task_id = submit(sandbox, person_jpeg, garment_jpeg).json()["task_id"]
    with requests.Session() as session:
        session.headers[contract.API_KEY_HEADER] = KEY
        started = time.monotonic()
        for _ in range(100):
            session.get(sandbox.url + contract.QUERY_PATH, params={"task_id": task_id})
        assert time.monotonic() - started < 2.5


def test_the_sandbox_refuses_to_listen_beyond_loopback():
    with pytest.raises(NotLoopbackError):
        SandboxServer("0.0.0.0")
    with pytest.raises(NotLoopbackError):
        SandboxServer("192.0.2.10")


def test_localhost_and_ipv4_loopback_are_fine():
    with SandboxServer("localhost") as server:
        assert server.url.startswith("http://localhost:")
