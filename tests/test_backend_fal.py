"""The fal backend against fal's documented requests and answers: the queue, each
try-on model's inputs and output, model and request errors, cancel, and signed webhooks."""

import base64
import json
import time

import pytest
import responses
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory
from responses import matchers

from django_tryon.backends import base, fal_signature, get_backend
from django_tryon.backends.fal import FalBackend, app_id
from django_tryon.backends.fal_signature import forget_key_sets
from tests.support import contract
from tests.support.loopback import DrippingServer, HeldServer
from tests.support.threads import in_thread, wait_for

BASE = "https://queue.fal.test"
JWKS_URL = "https://keys.fal.test/.well-known/jwks.json"
REQUEST_ID = contract.FAL_REQUEST_ID
FASHN_SUBMIT_URL = f"{BASE}/{contract.FAL_FASHN_MODEL}"
FASHN_REQUEST_URL = f"{BASE}/fal-ai/fashn/requests/{REQUEST_ID}"
KOLORS_REQUEST_URL = f"{BASE}/fal-ai/kling/requests/{REQUEST_ID}"
RESULT = "https://v3.fal.media/files/tiger/result.png"
SIGNER = contract.FalSigner()


@pytest.fixture(autouse=True)
def fresh_keys():
    forget_key_sets()
    yield
    forget_key_sets()


def make(model=contract.FAL_FASHN_MODEL, **options):
    return FalBackend(
        api_key="fal-secret",
        base_url=BASE + "/",
        read_timeout=7,
        options={"model": model, "jwks_url": JWKS_URL, **options},
    )


@pytest.fixture
def backend():
    backend = make()
    yield backend
    backend.close()


@pytest.fixture
def request_():
    return contract.documented_request("lower_body")


def data_uri(content_type, content):
    return f"data:{content_type};base64,{base64.b64encode(content).decode()}"


def completed(url=FASHN_REQUEST_URL):
    responses.get(f"{url}/status", json=contract.fal_status_answer("COMPLETED")[1], status=200)


# Submit ---------------------------------------------------------------------------


@responses.activate
def test_submit_queues_fashns_model_with_its_inputs(backend, request_):
    responses.post(FASHN_SUBMIT_URL, json=contract.fal_submit_answer())

    submission = backend.submit(request_)

    assert submission == base.Submission(task_id=REQUEST_ID, request_id=REQUEST_ID)
    sent = responses.calls[0].request
    assert sent.url == FASHN_SUBMIT_URL
    assert sent.headers["Authorization"] == "Key fal-secret"
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.body) == {
        "model_image": data_uri("image/jpeg", b"\xff\xd8person"),
        "garment_image": data_uri("image/png", b"\x89PNGgarment"),
        "category": "bottoms",
    }


@responses.activate
def test_fashns_own_options_go_as_its_inputs(request_):
    backend = make(mode="quality", moderation_level="none", seed=7, segmentation_free=False)
    responses.post(FASHN_SUBMIT_URL, json=contract.fal_submit_answer())
    backend.submit(request_)
    inputs = json.loads(responses.calls[0].request.body)
    assert (inputs["mode"], inputs["moderation_level"], inputs["seed"]) == ("quality", "none", 7)
    assert inputs["segmentation_free"] is False
    assert "output_format" not in inputs  # None: fal's default


@responses.activate
def test_kolors_takes_its_own_inputs_and_no_category(request_):
    backend = make(contract.FAL_KOLORS_MODEL)
    responses.post(
        f"{BASE}/{contract.FAL_KOLORS_MODEL}",
        json=contract.fal_submit_answer(app="/fal-ai/kling"),
    )
    backend.submit(request_)
    assert json.loads(responses.calls[0].request.body) == {
        "human_image_url": data_uri("image/jpeg", b"\xff\xd8person"),
        "garment_image_url": data_uri("image/png", b"\x89PNGgarment"),
    }


@responses.activate
def test_a_callback_url_goes_as_fal_webhook(backend, request_):
    callback = "https://shop.example.com/tryon/callbacks/fal/s3cr3t/?job=1&x=a b"
    responses.post(
        FASHN_SUBMIT_URL,
        json=contract.fal_submit_answer(),
        match=[matchers.query_param_matcher({"fal_webhook": callback})],
    )
    backend.submit(request_, callback_url=callback)
    assert len(responses.calls) == 1


@responses.activate
@pytest.mark.parametrize(
    "answer",
    [{}, {"request_id": ""}, {"request_id": 42}, {"request_id": "a/../b"}],
    ids=["no id", "empty", "a number", "a path"],
)
def test_a_submit_answered_without_a_usable_request_id_is_in_doubt(backend, request_, answer):
    responses.post(FASHN_SUBMIT_URL, json=answer)
    with pytest.raises(base.InvalidResponseError) as raised:
        backend.submit(request_)
    assert raised.value.in_doubt


def test_status_result_and_cancel_use_the_model_ids_owner_and_app_only():
    assert app_id("fal-ai/fashn/tryon/v1.6") == "fal-ai/fashn"
    assert app_id("fal-ai/kling/v1-5/kolors-virtual-try-on") == "fal-ai/kling"
    assert app_id("fal-ai/flux") == "fal-ai/flux"


@responses.activate
@pytest.mark.parametrize(
    ("status", "body", "error_class", "job_code"),
    contract.FAL_API_ERRORS,
    ids=[f"{row[0]}-{row[3]}" for row in contract.FAL_API_ERRORS],
)
def test_every_error_before_a_request_exists_is_mapped(
    backend, request_, status, body, error_class, job_code
):
    responses.post(FASHN_SUBMIT_URL, json=body, status=status)
    with pytest.raises(getattr(base, error_class)) as raised:
        backend.submit(request_)
    err = raised.value
    assert (err.status_code, err.provider, err.job_error_code) == (status, "fal", job_code)
    assert not err.shopper_fault
    assert body["detail"][:20] in str(err)
    assert "fal-secret" not in str(err)


@responses.activate
def test_a_photo_refused_at_the_submit_is_the_shoppers(backend, request_):
    responses.post(
        FASHN_SUBMIT_URL,
        json=contract.fal_model_error("image_too_large", "model_image"),
        status=422,
    )
    with pytest.raises(base.InvalidPhotoError) as raised:
        backend.submit(request_)
    assert raised.value.job_error_code == "photo_too_large"
    assert raised.value.shopper_fault


# Status and result ------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    ("status", "expected"), [("IN_QUEUE", base.QUEUED), ("IN_PROGRESS", base.PROCESSING)]
)
def test_a_request_in_flight(backend, status, expected):
    http_status, body = contract.fal_status_answer(status)
    responses.get(
        f"{FASHN_REQUEST_URL}/status",
        json=body,
        status=http_status,
        match=[matchers.header_matcher({"Authorization": "Key fal-secret"})],
    )
    state = backend.query(REQUEST_ID)
    assert (state.status, state.request_id) == (expected, REQUEST_ID)
    assert len(responses.calls) == 1  # no result asked for


@responses.activate
def test_a_completed_request_is_read_from_its_result(backend):
    completed()
    responses.get(FASHN_REQUEST_URL, json=contract.fal_fashn_output(RESULT))
    state = backend.query(REQUEST_ID)
    assert (state.status, state.result_url) == (base.SUCCEEDED, RESULT)
    assert [call.request.url for call in responses.calls] == [
        f"{FASHN_REQUEST_URL}/status",
        FASHN_REQUEST_URL,
    ]


@responses.activate
def test_kolors_result_is_one_image():
    backend = make(contract.FAL_KOLORS_MODEL)
    completed(KOLORS_REQUEST_URL)
    responses.get(KOLORS_REQUEST_URL, json=contract.fal_kolors_output(RESULT))
    assert backend.query(REQUEST_ID).result_url == RESULT


@responses.activate
@pytest.mark.parametrize(
    ("kind", "field", "error_class", "job_code"),
    contract.FAL_RUN_ERRORS,
    ids=[f"{row[0]}-{row[1] or 'body'}" for row in contract.FAL_RUN_ERRORS],
)
def test_every_model_error_ends_the_request_with_its_meaning(
    backend, kind, field, error_class, job_code
):
    completed()
    responses.get(
        FASHN_REQUEST_URL, json=contract.fal_model_error(kind, field, "Said by fal."), status=422
    )
    state = backend.query(REQUEST_ID)
    assert state.status == base.FAILED
    error = state.error
    assert type(error).__name__ == error_class
    assert (error.job_error_code, error.code, error.provider) == (job_code, kind, "fal")
    assert error.shopper_fault is (field == "model_image" and error_class == "InvalidPhotoError")
    assert "Said by fal." in str(error)


@responses.activate
def test_kolors_photo_errors_name_its_own_field():
    backend = make(contract.FAL_KOLORS_MODEL)
    completed(KOLORS_REQUEST_URL)
    responses.get(
        KOLORS_REQUEST_URL,
        json=contract.fal_model_error("face_detection_error", "human_image_url"),
        status=422,
    )
    error = backend.query(REQUEST_ID).error
    assert isinstance(error, base.InvalidPhotoError)
    assert error.job_error_code == "no_face"


@responses.activate
@pytest.mark.parametrize("error_type", ["request_timeout", "runner_disconnected", "internal_error"])
def test_a_request_that_failed_at_fal_for_good_fails_the_job(backend, error_type):
    completed()
    responses.get(FASHN_REQUEST_URL, json=contract.fal_request_error(error_type), status=504)
    state = backend.query(REQUEST_ID)
    assert isinstance(state.error, base.TaskFailedError)
    assert state.error.code == error_type


@responses.activate
def test_a_gateways_page_instead_of_the_result_is_tried_again(backend):
    completed()
    responses.get(FASHN_REQUEST_URL, body=b"<html>Bad gateway</html>", status=502)
    with pytest.raises(base.ProviderUnavailableError) as raised:
        backend.query(REQUEST_ID)
    assert not raised.value.in_doubt


@responses.activate
@pytest.mark.parametrize(
    "output",
    [{}, {"images": []}, {"images": [{"url": "ftp://x/y.png"}]}, {"image": {"url": 3}}],
    ids=["nothing", "no image", "not http", "not text"],
)
def test_a_result_without_a_pictures_url_is_tried_again(backend, output):
    completed()
    responses.get(FASHN_REQUEST_URL, json=output)
    with pytest.raises(base.InvalidResponseError):
        backend.query(REQUEST_ID)


@responses.activate
def test_an_unknown_status_is_tried_again(backend):
    responses.get(f"{FASHN_REQUEST_URL}/status", json={"status": "WEIRD"}, status=200)
    with pytest.raises(base.InvalidResponseError, match="WEIRD"):
        backend.query(REQUEST_ID)


@responses.activate
def test_a_request_id_goes_into_the_path_quoted(backend):
    responses.get(
        f"{BASE}/fal-ai/fashn/requests/a%3Fb%20c/status",
        json=contract.fal_status_answer("IN_QUEUE")[1],
        status=202,
    )
    assert backend.query("a?b c").status == base.QUEUED


# Cancel ---------------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    ("status", "body"),
    [
        (202, {"status": "CANCELLATION_REQUESTED"}),
        (400, {"status": "ALREADY_COMPLETED"}),
        (404, {"status": "NOT_FOUND"}),
    ],
)
def test_cancel_asks_fal_to_drop_the_request(backend, status, body):
    responses.put(
        f"{FASHN_REQUEST_URL}/cancel",
        json=body,
        status=status,
        match=[matchers.header_matcher({"Authorization": "Key fal-secret"})],
    )
    backend.cancel(REQUEST_ID)  # nothing left to do in any of these cases
    assert len(responses.calls) == 1


@responses.activate
def test_a_cancel_fal_could_not_take_says_why(backend):
    responses.put(f"{FASHN_REQUEST_URL}/cancel", json={"detail": "Internal"}, status=500)
    with pytest.raises(base.ProviderUnavailableError):
        backend.cancel(REQUEST_ID)


def test_other_backends_cancel_nothing():
    from django_tryon.backends.ailab import AILabBackend

    assert AILabBackend(api_key="k").cancel("task-1") is None


# Options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"model": "fal-ai/idm-vton"}, "option 'model'"),
        ({"mode": "fastest"}, "option 'mode'"),
        ({"model": contract.FAL_KOLORS_MODEL, "mode": "quality"}, "takes no 'mode'"),
        ({"model": contract.FAL_KOLORS_MODEL, "seed": 4}, "takes no 'seed'"),
        ({"jwks": "x"}, "Invalid setting 'jwks'"),
    ],
)
def test_wrong_options_are_refused(options, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        FalBackend(api_key="k", options=options)


def test_the_backend_comes_from_settings(settings):
    settings.TRYON = {
        "BACKEND": "django_tryon.backends.fal.FalBackend",
        "API_KEY": "k",
        "OPTIONS": {"model": contract.FAL_KOLORS_MODEL},
    }
    backend = get_backend()
    assert (backend.provider_name, backend.base_url) == ("fal", "https://queue.fal.run")
    assert backend.model_id == contract.FAL_KOLORS_MODEL
    assert backend.options["jwks_url"] == "https://rest.fal.ai/.well-known/jwks.json"
    assert backend.supports_callbacks and backend.credits() is None


# Webhooks -----------------------------------------------------------------------------


def delivery(body, headers=None):
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    headers = headers if headers is not None else SIGNER.headers(raw)
    return RequestFactory().post(
        "/tryon/callbacks/", data=raw, content_type="application/json", headers=headers
    )


def publish_keys(*signers, padded=False):
    keys = [key for signer in signers for key in signer.jwks()["keys"]]
    if padded:  # fal's published key set pads its base64url (third-party reports say so)
        keys = [{**key, "x": key["x"] + "="} for key in keys]
    responses.get(JWKS_URL, json={"keys": keys})


@responses.activate
@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
def test_a_signed_delivery_reports_the_result(backend, padded):
    publish_keys(contract.FalSigner(), SIGNER, padded=padded)  # a rotation: two keys
    task_id, state = backend.parse_callback(
        delivery(contract.fal_webhook_body("OK", contract.fal_fashn_output(RESULT)))
    )
    assert task_id == REQUEST_ID
    assert (state.status, state.result_url) == (base.SUCCEEDED, RESULT)


@responses.activate
def test_a_delivered_model_error_fails_the_job_with_its_meaning(backend):
    publish_keys(SIGNER)
    body = contract.fal_webhook_body(
        "ERROR",
        contract.fal_model_error("face_detection_error", "model_image"),
        error="Invalid status code: 422",
    )
    _, state = backend.parse_callback(delivery(body))
    assert state.status == base.FAILED
    assert state.error.job_error_code == "no_face"


@responses.activate
def test_a_delivered_error_without_details_fails_the_job_as_fal_says(backend):
    publish_keys(SIGNER)
    body = contract.fal_webhook_body("ERROR", None, error="Request timed out")
    _, state = backend.parse_callback(delivery(body))
    assert isinstance(state.error, base.TaskFailedError)
    assert "Request timed out" in str(state.error)


@responses.activate
def test_a_delivery_whose_output_fal_could_not_attach_leaves_it_to_the_worker(backend):
    publish_keys(SIGNER)
    body = {**contract.fal_webhook_body("OK", None), "payload_error": "Not JSON serializable"}
    _, state = backend.parse_callback(delivery(body))
    # Done, without the picture: the worker's query fetches the result.
    assert (state.status, state.result_url, state.result_content) == (base.SUCCEEDED, "", b"")


@responses.activate
@pytest.mark.parametrize(
    "body",
    [
        contract.fal_webhook_body("MAYBE", None),
        contract.fal_webhook_body("OK", {"images": []}),
        {"status": "OK", "payload": {}},
    ],
    ids=["unknown status", "no picture", "no request id"],
)
def test_a_delivery_not_shaped_as_fal_documents_is_refused(backend, body):
    publish_keys(SIGNER)
    with pytest.raises(base.RequestRejectedError):
        backend.parse_callback(delivery(body))


def test_an_oversized_delivery_is_refused_unread(backend):
    body = b"{" + b" " * (64 * 1024) + b"}"
    with pytest.raises(base.RequestRejectedError, match="too large"):
        backend.parse_callback(delivery(body, headers=SIGNER.headers(body)))


@responses.activate
@pytest.mark.parametrize(
    "answer",
    [
        {"status": 500, "json": {"detail": "down"}},
        {"status": 200, "json": {"keys": []}},
        {"status": 200, "json": {"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}]}},
        {"status": 200, "body": b"<html></html>"},
        {"status": 302, "headers": {"Location": "https://elsewhere.test/keys"}},
    ],
    ids=["an error", "no keys", "no Ed25519 key", "not json", "a redirect"],
)
def test_a_delivery_that_cannot_be_checked_now_is_left_for_fal_to_send_again(backend, answer):
    responses.get(JWKS_URL, **answer)
    with pytest.raises(base.ProviderUnavailableError, match="keys could not be fetched"):
        backend.parse_callback(
            delivery(contract.fal_webhook_body("OK", contract.fal_fashn_output(RESULT)))
        )
    assert len(responses.calls) == 1  # the redirect was not followed


def test_parse_callback_reads_the_raw_body_signed_not_a_reserialisation(backend):
    """fal signs the bytes it sends: spaces and key order are part of the message."""
    with responses.RequestsMock() as mocked:
        mocked.get(JWKS_URL, json=SIGNER.jwks())
        raw = json.dumps(
            contract.fal_webhook_body("OK", contract.fal_fashn_output(RESULT)), indent=3
        ).encode()
        task_id, _ = backend.parse_callback(delivery(raw, SIGNER.headers(raw)))
    assert task_id == REQUEST_ID


# fal's keys from a slow host ------------------------------------------------------------


def backend_for_keys_at(url, *, connect=1, read=1):
    return FalBackend(
        api_key="fal-secret",
        base_url=BASE,
        connect_timeout=connect,
        read_timeout=read,
        options={"jwks_url": url + contract.FAL_JWKS_PATH},
    )


def signed_delivery(signer=SIGNER):
    raw = json.dumps(contract.fal_webhook_body("OK", contract.fal_fashn_output(RESULT))).encode()
    return delivery(raw, signer.headers(raw))


@pytest.fixture
def dripping_key_host(request):
    body = json.dumps(SIGNER.jwks()).encode()
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
    )
    host = DrippingServer(head, body, request.param)
    yield host
    host.stop()


@pytest.mark.parametrize("dripping_key_host", ["headers", "body"], indirect=True)
def test_a_key_host_dripping_its_answer_is_cut_off_and_the_delivery_asked_for_again(
    dripping_key_host, caplog
):
    backend = backend_for_keys_at(dripping_key_host.url)
    started = time.monotonic()
    with pytest.raises(base.ProviderUnavailableError, match="could not be fetched"):
        backend.parse_callback(signed_delivery())
    assert time.monotonic() - started < 30  # the whole key set takes a minute and more
    assert dripping_key_host.requests == 1
    assert "longer than 2 s in all" in caplog.text  # the reason, in the shop's log


@pytest.fixture
def held_key_host():
    host = HeldServer(json.dumps(SIGNER.jwks()).encode())
    yield host
    host.stop()


def test_a_key_host_that_never_answers_holds_one_request_thread_not_every_one(held_key_host):
    # Read timeout 30 s: the fetch is still waiting while the other deliveries come.
    backend = backend_for_keys_at(held_key_host.url, read=30)
    held_key_host.holding = True
    fetching = in_thread(lambda: backend.parse_callback(signed_delivery()))
    wait_for(lambda: held_key_host.requests == 1, 10, "the key set's fetch")

    # Every other delivery meanwhile is answered at once: come again (a 503).
    waiting = [in_thread(lambda: backend.parse_callback(signed_delivery())) for _ in range(8)]
    for outcome in waiting:
        with pytest.raises(base.ProviderUnavailableError, match="being fetched"):
            outcome(20)
    assert held_key_host.requests == 1

    held_key_host.release()
    assert fetching(40)[0] == REQUEST_ID  # verified with the keys it fetched


def test_a_forger_making_the_keys_be_fetched_again_holds_one_thread_and_delays_no_delivery(
    held_key_host, monkeypatch
):
    backend = backend_for_keys_at(held_key_host.url, read=30)
    assert backend.parse_callback(signed_delivery())[0] == REQUEST_ID  # keys fetched, kept
    later = time.monotonic() + fal_signature.MIN_REFETCH_INTERVAL
    monkeypatch.setattr(fal_signature, "monotonic", lambda: later)  # a fetch may be made again
    held_key_host.holding = True
    forger = contract.FalSigner()
    # A signature no kept key verifies: the keys are fetched again (fal may have
    # rotated them), and this fetch hangs.
    forged = in_thread(lambda: backend.parse_callback(signed_delivery(forger)))
    wait_for(lambda: held_key_host.requests == 2, 10, "the key set's second fetch")

    # fal's own deliveries are verified with the kept keys meanwhile; more forgeries
    # wait for nothing and fetch nothing.
    genuine = [in_thread(lambda: backend.parse_callback(signed_delivery())) for _ in range(4)]
    for outcome in genuine:
        assert outcome(20)[0] == REQUEST_ID
    more = [in_thread(lambda: backend.parse_callback(signed_delivery(forger))) for _ in range(4)]
    for outcome in more:
        with pytest.raises(base.ProviderUnavailableError, match="being fetched"):
            outcome(20)
    assert held_key_host.requests == 2

    held_key_host.release()
    with pytest.raises(base.RequestRejectedError, match="does not verify"):
        forged(40)
