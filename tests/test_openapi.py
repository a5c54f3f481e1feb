"""The OpenAPI schema of the shopper API: the committed ``docs/openapi.yaml`` is what the
code generates and what the example shop serves, the API's real answers are the ones it
documents (statuses, headers, bodies), and the API works without drf-spectacular."""

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import jsonschema
import pytest
import yaml
from django.test import Client
from django.utils import timezone

from django_tryon.models import JobStatus, TryOnJob
from tests.support.api import (
    GARMENTS_URL,
    JOBS_URL,
    job_url,
    photo,
    post_job,
)
from tests.support.images import TEXT, photo_bytes

pytestmark = pytest.mark.usefixtures("fresh_throttle_cache")

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "docs" / "openapi.yaml"
SCHEMA = yaml.safe_load(COMMITTED.read_text())
REGENERATE = "python example_project/manage.py spectacular --file docs/openapi.yaml"
JOB_PATH = "/tryon/api/jobs/{id}/"

# In the example shop's settings, as `manage.py spectacular` runs: the schema written
# by the command, and the one the shop serves.
GENERATE = """
import django, sys
django.setup()
from django.core.management import call_command
from django.test import Client
call_command("spectacular", "--validate", "--fail-on-warn", "--file", sys.argv[1])
answer = Client().get("/tryon/api/schema/")
assert answer.status_code == 200, answer.status_code
open(sys.argv[2], "wb").write(answer.content)
"""


def _differences(old, new, where="", found=None):
    """Where two parsed schemas differ, as readable paths (the first few)."""
    found = [] if found is None else found
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            if key not in new:
                found.append(f"{where}/{key}: only in docs/openapi.yaml")
            elif key not in old:
                found.append(f"{where}/{key}: only in the code")
            else:
                _differences(old[key], new[key], f"{where}/{key}", found)
    elif old != new:
        found.append(f"{where}: {old!r} in docs/openapi.yaml, {new!r} from the code")
    return found[:20]


def test_committed_schema_is_what_the_code_generates_and_the_shop_serves(tmp_path):
    generated, served = tmp_path / "generated.yaml", tmp_path / "served.yaml"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "TRYON_DEMO_DB": str(tmp_path / "db.sqlite3"),
        "TRYON_DEMO_MEDIA": str(tmp_path / "media"),
    }
    child = subprocess.run(
        [sys.executable, "-c", GENERATE, str(generated), str(served)],
        cwd=ROOT / "example_project",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    code = yaml.safe_load(generated.read_text())
    differences = "\n".join(_differences(SCHEMA, code))
    assert code == SCHEMA, (
        f"docs/openapi.yaml is out of date with the code:\n{differences}\n"
        f"Regenerate it from the checkout's root:\n    {REGENERATE}"
    )
    assert yaml.safe_load(served.read_text()) == SCHEMA


def test_the_schema_describes_the_shopper_api():
    assert set(SCHEMA["paths"]) == {
        "/tryon/api/jobs/",
        JOB_PATH,
        "/tryon/api/garments/",
        "/tryon/api/model-photos/",
    }
    create = SCHEMA["paths"]["/tryon/api/jobs/"]["post"]
    form = create["requestBody"]["content"]["multipart/form-data"]["schema"]
    request = _resolve(form)
    # The shopper's photo or an offered model photo's id: exactly one, checked by the view.
    assert request["required"] == ["garment"]
    assert request["properties"]["model_photo"]["type"] == "integer"
    assert request["properties"]["person_image"] == {
        **request["properties"]["person_image"],
        "type": "string",
        "format": "binary",
    }
    assert set(create["responses"]) == {
        *("200", "201", "400", "403", "406", "413", "415", "429", "503"),
    }
    assert "Retry-After" in create["responses"]["429"]["headers"]
    assert "Retry-After" in create["responses"]["503"]["headers"]
    assert "Location" in create["responses"]["201"]["headers"]
    job = SCHEMA["components"]["schemas"]["TryOnJob"]
    assert set(job["required"]) == {
        "id",
        "status",
        "garment",
        "model_photo",
        "result_url",
        "error",
        "created_at",
        "finished_at",
        "reused",
        "check_again_in",
        "check_again_planned",
    }
    assert set(SCHEMA["paths"][JOB_PATH]) == {"get", "delete"}


# --- The API's real answers, checked against the committed schema.


def _resolve(schema):
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = SCHEMA["components"]["schemas"][name]
    return schema


def _json_schema(node):
    """OpenAPI 3.0's schema dialect as JSON Schema: ``nullable`` becomes a null type."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False):
        node = {"anyOf": [node, {"type": "null"}]}
    return node


VALIDATOR_ROOT = {"components": _json_schema(SCHEMA["components"])}


def assert_documented(method, path, response):
    """``response`` has a status the schema lists for the operation, its documented
    headers, and a body valid against the documented schema."""
    operation = SCHEMA["paths"][path][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], (
        f"{method} {path} answered {status}, which the schema does not list: "
        f"{response.content[:300]!r}"
    )
    documented = operation["responses"][status]
    for name, header in documented.get("headers", {}).items():
        assert response.has_header(name), f"{method} {path} {status}: no {name} header"
        if header["schema"]["type"] == "integer":
            int(response[name])
    if "content" not in documented:
        assert response.content == b""
        return None
    assert response["Content-Type"] == "application/json"
    body = response.json()
    schema = _json_schema(documented["content"]["application/json"]["schema"])
    jsonschema.validate(body, {**VALIDATOR_ROOT, **schema})
    return body


@pytest.fixture
def token_client(db):
    """A browser that sends the CSRF token, as the button does."""
    browser = Client(enforce_csrf_checks=True)
    browser.get(GARMENTS_URL)
    browser.defaults["HTTP_X_CSRFTOKEN"] = browser.cookies["csrftoken"].value
    return browser


def test_garment_list(client, garment):
    garments = assert_documented("GET", "/tryon/api/garments/", client.get(GARMENTS_URL))
    assert [item["id"] for item in garments] == [garment.pk]


def test_a_new_job_then_the_same_request_reused(token_client, garment):
    created = post_job(token_client, garment)
    job = assert_documented("POST", "/tryon/api/jobs/", created)
    assert created.status_code == 201
    assert created["Location"].endswith(job_url(job["id"]))
    again = post_job(token_client, garment)
    assert again.status_code == 200
    assert assert_documented("POST", "/tryon/api/jobs/", again)["reused"] is True


REFUSED = {
    "no-garment": ({"garment": None}, "required", "garment"),
    # An empty form field (a <select> left on its blank option) is a missing garment.
    "empty-garment": ({"garment": ""}, "required", "garment"),
    "garment-not-a-number": ({"garment": "abc"}, "does_not_exist", "garment"),
    "photo-as-text": ({"image": "me.jpg"}, "invalid", "person_image"),
    "not-an-image": ({"image": TEXT}, "not_an_image", "person_image"),
    "too-small": ({"image": photo_bytes((10, 10))}, "too_small", "person_image"),
    "no-consent": ({"consent": None}, "consent_required", "consent"),
    "consent-not-boolean": ({"consent": "maybe"}, "invalid", "consent"),
}


@pytest.mark.parametrize(("fields", "code", "field"), REFUSED.values(), ids=REFUSED.keys())
def test_refused_fields(fields, code, field, token_client, garment):
    fields = dict(fields)
    if isinstance(fields.get("image"), str):
        # Not a file: a plain form field of that name.
        data = {"garment": garment.pk, "person_image": fields["image"], "consent": "true"}
        response = token_client.post(JOBS_URL, data)
    else:
        image = fields.get("image")
        response = post_job(
            token_client,
            fields.get("garment", garment),
            image=None if image is None else photo(image),
            consent=fields.get("consent", "true"),
        )
    error = assert_documented("POST", "/tryon/api/jobs/", response)["error"]
    assert (response.status_code, error["code"], error["field"]) == (400, code, field)


def test_no_slot_for_a_large_decode(settings, monkeypatch, token_client, garment):
    from django_tryon import images

    settings.TRYON = {**settings.TRYON, "INTAKE_MAX_PARALLEL_DECODES": 1}
    monkeypatch.setattr(images, "DECODE_WAIT_SECONDS", 0.01)
    large = photo(photo_bytes((3000, 2000), image_format="PNG"), name="me.png")
    with images.DECODE_SLOTS.hold(0):
        response = post_job(token_client, garment, image=large)
    error = assert_documented("POST", "/tryon/api/jobs/", response)["error"]
    assert (response.status_code, error["code"]) == (503, "intake_busy")


def test_an_unreadable_body(token_client, garment):
    response = token_client.post(JOBS_URL, b"garment=1", content_type="multipart/form-data")
    error = assert_documented("POST", "/tryon/api/jobs/", response)["error"]
    assert (response.status_code, error["code"]) == (400, "parse_error")


def test_no_csrf_token(garment, make_job):
    browser = Client(enforce_csrf_checks=True)
    response = post_job(browser, garment)
    assert response.status_code == 403
    assert assert_documented("POST", "/tryon/api/jobs/", response)["error"]["code"] == (
        "csrf_failed"
    )
    erased = browser.delete(job_url(make_job().pk))
    assert erased.status_code == 403
    assert_documented("DELETE", JOB_PATH, erased)


def test_not_json_accepted(token_client, garment):
    for method, path, response in [
        ("GET", "/tryon/api/garments/", token_client.get(GARMENTS_URL, HTTP_ACCEPT="text/html")),
        ("POST", "/tryon/api/jobs/", post_job(token_client, garment, HTTP_ACCEPT="text/html")),
        ("GET", JOB_PATH, token_client.get(job_url(uuid.uuid4()), HTTP_ACCEPT="text/html")),
    ]:
        assert response.status_code == 406, path
        assert_documented(method, path, response)


def test_a_body_over_the_limit(settings, token_client, garment):
    settings.TRYON = {**settings.TRYON, "MAX_UPLOAD_BYTES": 1000}
    big = photo(b"x" * 200_000)
    response = post_job(token_client, garment, image=big)
    assert response.status_code == 413
    assert_documented("POST", "/tryon/api/jobs/", response)


def test_not_a_form(token_client, garment):
    response = token_client.post(
        JOBS_URL, json.dumps({"garment": garment.pk}), content_type="application/json"
    )
    assert response.status_code == 415
    assert_documented("POST", "/tryon/api/jobs/", response)


def test_too_fast_then_over_the_daily_quota(settings, token_client, garment, make_job):
    # Counted against this client's address (guests are throttled by address).
    assert post_job(token_client, garment).status_code == 201
    settings.TRYON = {**settings.TRYON, "THROTTLE_RATE": "1/min"}
    throttled = post_job(token_client, garment, image=photo(photo_bytes(color=(1, 2, 3))))
    assert throttled.status_code == 429
    assert assert_documented("POST", "/tryon/api/jobs/", throttled)["error"]["code"] == (
        "throttled"
    )
    erased = token_client.delete(job_url(make_job().pk))
    assert erased.status_code == 429
    assert_documented("DELETE", JOB_PATH, erased)

    settings.TRYON = {**settings.TRYON, "THROTTLE_RATE": None, "DAILY_QUOTA_GUEST": 1}
    over = post_job(token_client, garment, image=photo(photo_bytes(color=(4, 5, 6))))
    assert over.status_code == 429
    assert assert_documented("POST", "/tryon/api/jobs/", over)["error"]["code"] == (
        "quota_exceeded"
    )
    for cap, code in (
        ("DAILY_QUOTA_ADDRESS", "address_quota_exceeded"),
        ("DAILY_QUOTA_ALL_GUESTS", "guest_quota_exceeded"),
    ):
        settings.TRYON = {
            **settings.TRYON,
            "DAILY_QUOTA_GUEST": None,
            "DAILY_QUOTA_ADDRESS": None,
            cap: 1,
        }
        over = post_job(token_client, garment, image=photo(photo_bytes(color=(7, 5, 6))))
        assert assert_documented("POST", "/tryon/api/jobs/", over)["error"]["code"] == code


def test_reading_jobs(token_client, garment):
    job_id = post_job(token_client, garment).json()["id"]
    pending = assert_documented("GET", JOB_PATH, token_client.get(job_url(job_id)))
    assert pending["status"] == "pending"

    TryOnJob.objects.filter(pk=job_id).update(
        status=JobStatus.FAILED, error_code="no_face", finished_at=timezone.now()
    )
    failed = assert_documented("GET", JOB_PATH, token_client.get(job_url(job_id)))
    assert failed["error"]["code"] == "no_face"

    for other in [uuid.uuid4(), "not-a-uuid"]:
        missing = token_client.get(f"{JOBS_URL}{other}/")
        assert missing.status_code == 404
        assert_documented("GET", JOB_PATH, missing)


def test_erasing_a_job(token_client, garment):
    job_id = post_job(token_client, garment).json()["id"]
    erased = token_client.delete(job_url(job_id))
    assert erased.status_code == 204
    assert_documented("DELETE", JOB_PATH, erased)
    again = token_client.delete(job_url(job_id))
    assert again.status_code == 404
    assert_documented("DELETE", JOB_PATH, again)


# --- Without the `schema` extra.

WITHOUT_SPECTACULAR = textwrap.dedent(
    """
    import sys
    sys.modules["drf_spectacular"] = None  # as if not installed: importing it fails
    import django
    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django_tryon.api import schema
    from tests.support.images import make_image_bytes
    from tests.support.images import photo_bytes
    from django.core.files.base import ContentFile
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django_tryon.models import Garment
    assert schema.spectacular is None
    call_command("migrate", verbosity=0)
    garment = Garment.objects.create(
        name="Shirt", clothes_type="upper_body",
        image=ContentFile(make_image_bytes((300, 300)), name="shirt.jpg"),
    )
    browser = Client()
    created = browser.post("/tryon/api/jobs/", {
        "garment": garment.pk, "consent": "true",
        "person_image": SimpleUploadedFile("me.jpg", photo_bytes(), "image/jpeg"),
    })
    empty = browser.post("/tryon/api/jobs/", {"garment": "", "consent": "true"})
    read = browser.get(created["Location"])
    print(created.status_code, read.status_code, read.json()["status"],
          empty.json()["error"]["code"])
    """
)


def test_the_api_works_without_drf_spectacular(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    child = subprocess.run(
        [sys.executable, "-c", WITHOUT_SPECTACULAR],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    assert child.stdout.split() == ["201", "200", "pending", "required"]
