"""Shared helpers of the shopper API tests."""

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.support.images import photo_bytes

JOBS_URL = "/tryon/api/jobs/"
GARMENTS_URL = "/tryon/api/garments/"


def job_url(pk):
    return reverse("django_tryon:job-detail", kwargs={"pk": pk})


def photo(data=None, name="me.jpg", content_type="image/jpeg"):
    return SimpleUploadedFile(name, photo_bytes() if data is None else data, content_type)


def post_job(client, garment, image=None, consent="true", **headers):
    data = {"person_image": photo() if image is None else image}
    if garment is not None:
        data["garment"] = getattr(garment, "pk", garment)
    if consent is not None:
        data["consent"] = consent
    return client.post(JOBS_URL, data, **headers)


def assert_error(response, status, code, field=None):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    message = str(error["message"])
    assert len(message) > 15 and message.endswith("."), message
    assert "%(" not in message
    if field is not None:
        assert error["field"] == field
        assert error["fields"][field][0] == message
    return error
