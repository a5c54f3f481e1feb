"""Photos and results on S3 through django-storages, against moto's S3 server on loopback.

What a shop on S3 relies on: objects are private (no public ACL), the shopper
gets a signed, expiring link to their result, a job keeps one result object
whatever crashes happen, and erasing a try-on deletes its objects.
"""

import importlib.metadata
import importlib.util
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import CommandError, call_command

from django_tryon.models import Garment, TryOnJob
from django_tryon.results import result_from_content, store_result
from django_tryon.sandbox import SandboxServer
from django_tryon.storage import result_image_name
from django_tryon.worker import Worker
from tests.support.console import console_commands, output_matches
from tests.support.images import make_image_bytes
from tests.support.processes import free_port, wait_for_port

BUCKET = "tryon-media"
ALIAS = "tryon-s3"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
ROOT = Path(__file__).resolve().parent.parent
# docs/deployment.md marks its S3 blocks: <!-- s3: storages|start|settings|run -->.
S3_BLOCK = re.compile(
    r"^<!-- s3: (?P<kind>\w+) -->\n```\w+\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL
)
DOCUMENTED_S3_PORT = "5000"


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def s3(s3_endpoint):
    """A fresh bucket; returns a boto3 client on it."""
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **CREDENTIALS)
    client.create_bucket(Bucket=BUCKET)
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


@pytest.fixture
def on_s3(settings, s3, s3_endpoint, monkeypatch):
    """Uploads and results on S3, as in docs/deployment.md."""
    settings.STORAGES = {
        **settings.STORAGES,
        ALIAS: {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_endpoint,
                "region_name": "us-east-1",
                "access_key": CREDENTIALS["aws_access_key_id"],
                "secret_key": CREDENTIALS["aws_secret_access_key"],
                "default_acl": "private",
                "querystring_auth": True,
                "querystring_expire": 600,
                "file_overwrite": True,
            },
        },
    }
    storage = storages[ALIAS]
    # The model fields resolve UPLOAD_STORAGE/RESULT_STORAGE when Django loads
    # the models, as they would from a shop's settings at start; this test
    # moves them to S3 after start.
    for model, name in (
        (Garment, "image"),
        (TryOnJob, "person_image"),
        (TryOnJob, "result_image"),
    ):
        monkeypatch.setattr(model._meta.get_field(name), "storage", storage)
    return storage


def object_keys(client, prefix=""):
    answer = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return {item["Key"] for item in answer.get("Contents", [])}


def is_public(client, key):
    grants = client.get_object_acl(Bucket=BUCKET, Key=key)["Grants"]
    return any(grant["Grantee"].get("URI") == ALL_USERS for grant in grants)


@pytest.fixture
def s3_job(settings, on_s3, provider, django_user_model):
    settings.TRYON = {
        "API_KEY": "test-key",
        "BASE_URL": provider.url,
        "POLL_INTERVAL": 0,
        "UPLOAD_STORAGE": ALIAS,
        "RESULT_STORAGE": ALIAS,
    }
    garment = Garment.objects.create(
        name="Shirt",
        clothes_type="upper_body",
        image=ContentFile(make_image_bytes((400, 400)), name="shirt.jpg"),
    )
    user = django_user_model.objects.create_user("shopper", password="x")
    return TryOnJob.objects.create(
        garment=garment,
        user=user,
        person_image=ContentFile(make_image_bytes(), name="person.jpg"),
    )


def test_a_job_runs_from_s3_photos_to_a_private_s3_result(s3_job, s3, provider):
    photo_key = s3_job.person_image.name
    assert photo_key.startswith("tryon/photos/")
    assert object_keys(s3, "tryon/photos/") == {photo_key}

    with Worker(worker_id="s3") as worker:
        worker.run_pass()  # submit: the photo is read back from S3
        worker.run_pass()  # query, download, store on S3

    s3_job.refresh_from_db()
    assert s3_job.status == "succeeded"
    assert s3_job.result_image.name == result_image_name(s3_job, "png")
    body = s3.get_object(Bucket=BUCKET, Key=s3_job.result_image.name)["Body"].read()
    assert body == provider.result_body
    # What the provider received is the photo stored on S3.
    assert make_image_bytes() in provider.submits[0][1]

    for key in object_keys(s3):
        assert not is_public(s3, key), key


def test_objects_are_not_readable_without_a_signature(s3_job, s3, s3_endpoint):
    plain_url = f"{s3_endpoint}/{BUCKET}/{s3_job.person_image.name}"
    assert requests.get(plain_url, timeout=10).status_code == 403


def test_the_shopper_gets_a_signed_expiring_result_link(s3_job, s3, provider, client):
    with Worker(worker_id="s3") as worker:
        worker.run_pass()
        worker.run_pass()
    client.force_login(s3_job.user)

    answer = client.get(f"/tryon/api/jobs/{s3_job.pk}/")

    assert answer.status_code == 200
    url = answer.json()["result_url"]
    query = parse_qs(urlsplit(url).query)
    assert {"Signature", "X-Amz-Signature"} & set(query), url
    assert {"Expires", "X-Amz-Expires"} & set(query), url
    download = requests.get(url, timeout=10)
    assert download.status_code == 200
    assert download.content == provider.result_body
    unsigned = url.split("?", 1)[0]
    assert requests.get(unsigned, timeout=10).status_code == 403


def test_a_result_stored_again_after_a_crash_stays_one_object(s3_job, s3, provider):
    # A worker that died after storing the result leaves an object; the next one
    # stores it again under the same name, never beside it.
    for _ in range(2):
        downloaded = result_from_content(provider.result_body, 10_000_000)
        try:
            name = store_result(s3_job, downloaded)
        finally:
            downloaded.close()
        assert name == result_image_name(s3_job, "png")
    assert object_keys(s3, "tryon/results/") == {name}
    assert not is_public(s3, name)


def test_erasing_a_try_on_deletes_its_s3_objects(s3_job, s3, client):
    with Worker(worker_id="s3") as worker:
        worker.run_pass()
        worker.run_pass()
    s3_job.refresh_from_db()
    assert object_keys(s3, "tryon/results/") == {s3_job.result_image.name}
    client.force_login(s3_job.user)

    assert client.delete(f"/tryon/api/jobs/{s3_job.pk}/").status_code == 204

    assert object_keys(s3, "tryon/photos/") == set()
    assert object_keys(s3, "tryon/results/") == set()
    # The garment's picture is the shop's, not the shopper's: it stays.
    assert len(object_keys(s3, "tryon/garments/")) == 1


def deployment_s3_blocks():
    text = (ROOT / "docs" / "deployment.md").read_text()
    return {match["kind"]: match["body"] for match in S3_BLOCK.finditer(text)}


def test_the_deployment_pages_s3_trial_runs_as_written(settings, tmp_path):
    """docs/deployment.md's "Trying S3 on your machine": moto's server started as the
    page says, its STORAGES and development settings, the bucket made with the storage's
    own client, then tryon_check, whose storage and media lines must be the page's."""
    blocks = deployment_s3_blocks()
    assert set(blocks) == {"storages", "start", "settings", "run"}
    port = str(free_port())

    def localised(text):
        return text.replace(DOCUMENTED_S3_PORT, port)

    (install, _), (server, _) = console_commands(blocks["start"])
    # What the install names is what this run has: the s3 extra, and moto's server.
    extras = importlib.metadata.metadata("django-tryon").get_all("Provides-Extra")
    for requirement in shlex.split(install)[2:]:
        name, extra = re.fullmatch(r"([\w-]+)\[(\w+)\]", requirement).groups()
        if name == "django-tryon":
            assert extra in extras
        else:
            assert importlib.util.find_spec(f"{name}.{extra}") is not None, requirement
    argv = shlex.split(localised(server))
    assert argv[0] == "python"
    log = (tmp_path / "moto.log").open("wb")
    process = subprocess.Popen([sys.executable, *argv[1:]], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(int(port), timeout=30)
        namespace: dict = {}
        exec(blocks["storages"].replace("    ...,\n", ""), namespace)
        exec(localised(blocks["settings"]), namespace)
        (make_bucket, _), (check, expected) = console_commands(blocks["run"])
        with SandboxServer(processing_time=0) as sandbox:
            settings.STORAGES = namespace["STORAGES"]
            settings.TRYON = {**namespace["TRYON"], "API_KEY": "k", "BASE_URL": sandbox.url}
            argv = shlex.split(make_bucket)
            assert argv[:4] == ["python", "manage.py", "shell", "-c"]
            call_command("shell", command=argv[4], stdout=io.StringIO())
            argv = shlex.split(check)
            assert argv[:2] == ["python", "manage.py"]
            out = io.StringIO()
            try:
                call_command(*argv[2:], stdout=out, no_color=True)
            except CommandError as err:
                raise AssertionError(out.getvalue()) from err
        assert output_matches([localised(line) for line in expected], out.getvalue()), (
            out.getvalue()
        )
        bucket = namespace["STORAGES"]["tryon"]["OPTIONS"]["bucket_name"]
        client = boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="eu-west-1", **CREDENTIALS
        )
        # tryon_check deleted what it wrote: the bucket is there, and empty.
        assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    finally:
        process.terminate()
        process.wait(10)
        log.close()
