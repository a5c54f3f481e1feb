"""Raw requests to the sandbox provider, as a client of AILabAPI's protocol sends them."""

import requests

from django_tryon.backends import base
from tests.support import contract

KEY = "sandbox-test-key"


def submit(sandbox, person, garment, *, key=KEY, data=None, files=None):
    fields = {"task_type": "async", "clothes_type": "upper_body"}
    fields.update(data or {})
    uploads = {
        "person_image": ("person.jpg", person, "image/jpeg"),
        "clothes_image": ("garment.jpg", garment, "image/jpeg"),
    }
    uploads.update(files or {})
    headers = {contract.API_KEY_HEADER: key} if key is not None else {}
    return requests.post(
        sandbox.url + contract.SUBMIT_PATH,
        headers=headers,
        data={k: v for k, v in fields.items() if v is not None},
        files={k: v for k, v in uploads.items() if v is not None},
        timeout=10,
    )


def query(sandbox, task_id, key=KEY):
    return requests.get(
        sandbox.url + contract.QUERY_PATH,
        params={"task_id": task_id},
        headers={contract.API_KEY_HEADER: key},
        timeout=10,
    )


def try_on_request(person, garment, clothes_type="upper_body"):
    return base.TryOnRequest(
        person_image=base.ImageInput(person, "person.jpg", "image/jpeg"),
        garment_image=base.ImageInput(garment, "garment.jpg", "image/jpeg"),
        clothes_type=clothes_type,
    )
