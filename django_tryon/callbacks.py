"""The webhook URL a submit gives the provider, and the per-job secret it carries.

When ``TRYON["WEBHOOK_BASE_URL"]`` is set and the backend can push
(:attr:`~django_tryon.backends.base.TryOnBackend.supports_callbacks`), every
submit asks the provider to call::

    <WEBHOOK_BASE_URL>/tryon/webhooks/<provider>/<job id>/<secret>/

when the task ends (the path is wherever the shop includes
``django_tryon.urls``). The secret is 32 random bytes, new for every submit.
Only its SHA-256 is stored (``TryOnJob.callback_digest``), written with the
task id when the submit is recorded:

- a copy of the database gives nobody a working URL (the secret has 256 bits:
  a fast hash is enough, nothing can be guessed back from it);
- nothing depends on ``SECRET_KEY``: rotating it leaves every job in flight
  reachable, and a leaked key forges no delivery;
- each job has its own secret, so one job's URL authenticates nothing about
  another, and a job sent back by staff gets a new one (the old URL stops
  working).

The view (:mod:`django_tryon.webhooks`) compares digests in constant time.
"""

import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import urlsplit

from django.urls import reverse

from .conf import tryon_settings

#: Random bytes in a secret (base64url: 43 characters in the URL).
SECRET_BYTES = 32
#: The longest secret the view hashes; a longer one is refused unread.
MAX_SECRET_LENGTH = 100


def enabled_for(backend: Any) -> bool:
    """Whether submits to ``backend`` ask for a webhook."""
    return bool(tryon_settings.WEBHOOK_BASE_URL) and bool(
        getattr(backend, "supports_callbacks", False)
    )


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def digest(secret: str) -> str:
    """What is stored of ``secret``: its SHA-256, in hex."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    """Whether ``secret`` is the one whose digest is stored (in constant time)."""
    if not stored_digest or not secret or len(secret) > MAX_SECRET_LENGTH:
        return False
    return hmac.compare_digest(digest(secret), stored_digest)


def url_name(provider: str) -> str:
    """The URL name of ``provider``'s webhook view (in the ``django_tryon`` namespace)."""
    return f"django_tryon:webhook-{provider}"


def webhook_url(provider: str, job_id: Any, secret: str) -> str:
    """The absolute URL the provider is asked to call for job ``job_id``."""
    path = reverse(url_name(provider), kwargs={"job_id": str(job_id), "secret": secret})
    return origin(tryon_settings.WEBHOOK_BASE_URL) + path


def origin(base_url: str) -> str:
    """``scheme://host[:port]`` of ``base_url`` (any path it has is dropped: the
    path comes from the URLconf, where the shop includes ``django_tryon.urls``)."""
    parts = urlsplit(str(base_url).strip())
    return f"{parts.scheme}://{parts.netloc}"
