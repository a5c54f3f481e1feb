"""fal's webhook signatures: Ed25519 over each delivery, checked with fal's published keys.

As fal documents it (model endpoints, webhooks, "Verifying your webhook"):

- a delivery carries ``X-Fal-Webhook-Request-Id``, ``X-Fal-Webhook-User-Id``,
  ``X-Fal-Webhook-Timestamp`` (Unix seconds) and ``X-Fal-Webhook-Signature``
  (hex);
- the signed message is the request id, the user id, the timestamp and the
  SHA-256 hex digest of the raw body, joined by newlines, in UTF-8;
- the public keys are a JSON Web Key Set (``OKP`` keys on ``Ed25519``, ``x`` in
  base64url) at ``https://rest.fal.ai/.well-known/jwks.json``, which may be
  kept up to 24 hours. A delivery names no key: every key is tried;
- a timestamp more than five minutes from now is refused.

The keys are kept per JWKS URL for the process (:func:`key_set`), so a delivery
costs no fetch. A signature that none of the kept keys verifies makes one
fetch (fal may have rotated its keys), at most once a minute: a forger
sending bad signatures cannot make the shop fetch the keys on every request.

A fetch runs on the thread of the delivery that needs it (a web server's
request thread), held to the backend's connect and read timeouts and to their
sum in all (:func:`~django_tryon.deadlines.deadline`), however slowly the key
host answers. Only one thread fetches a URL's keys at a time, and no other
waits for it: a delivery the kept keys verify is answered at once; one that
needs the keys being fetched is answered ``503`` at once (fal delivers it
again). So a slow key host, or a forger making it fetch, holds at most one of
the shop's request threads per key URL, for at most that deadline.
"""

import base64
import binascii
import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError as err:  # pragma: no cover - depends on the installed extras
    CRYPTOGRAPHY_MISSING: ImportError | None = err
else:
    CRYPTOGRAPHY_MISSING = None

from ..deadlines import deadline
from ..http import EnvironmentCachingSession
from ..redaction import get_logger
from .answers import read_json_answer

logger = get_logger("django_tryon.backends.fal")

DEFAULT_JWKS_URL = "https://rest.fal.ai/.well-known/jwks.json"
HEADERS = (
    "X-Fal-Webhook-Request-Id",
    "X-Fal-Webhook-User-Id",
    "X-Fal-Webhook-Timestamp",
    "X-Fal-Webhook-Signature",
)
#: How far a delivery's timestamp may be from now, either way (seconds).
MAX_SKEW_SECONDS = 300
#: How long fetched keys are used before they are fetched again (seconds).
KEYS_MAX_AGE = 24 * 60 * 60
#: The shortest time between two fetches made because a signature did not verify.
MIN_REFETCH_INTERVAL = 60.0
#: After a failed fetch with keys still held, the next try waits this long (seconds).
KEYS_RETRY_INTERVAL = 60.0
#: A key set is a few hundred bytes; larger is refused unread.
MAX_JWKS_BYTES = 64 * 1024
MAX_KEYS = 16
MAX_HEADER_LENGTH = 200
SIGNATURE_HEX_LENGTH = 128  # an Ed25519 signature is 64 bytes


def monotonic() -> float:
    """The clock the key set's ages are read on (tests move it forward)."""
    return time.monotonic()


class SignatureRefused(ValueError):
    """The delivery is not signed by fal as documented; the words say why."""


class KeysUnavailable(ConnectionError):
    """fal's keys could not be had: the delivery cannot be checked now (fal retries it)."""


def require_cryptography() -> None:
    if CRYPTOGRAPHY_MISSING is not None:
        raise ImportError(
            "The fal backend checks webhook signatures with the cryptography library: "
            "pip install 'django-tryon[fal]'."
        ) from CRYPTOGRAPHY_MISSING


class KeySet:
    """fal's public keys from one JWKS URL, fetched on first use and kept. Thread-safe:
    one thread fetches at a time, and none waits for another's fetch."""

    def __init__(self, url: str, *, timeout: tuple[float, float]):
        require_cryptography()
        self.url = url
        self.timeout = timeout
        self.fetches = 0
        self._keys: list[Any] = []
        self._fetched_at: float | None = None
        self._tried_at: float | None = None
        self._fetching = False  # a thread is fetching: the others do not wait for it
        self._lock = threading.Lock()  # held for moments, never during a fetch

    @property
    def deadline(self) -> float:
        """The longest a fetch may take in all (seconds)."""
        connect, read = self.timeout
        return float(connect) + float(read)

    def keys(self) -> list[Any]:
        """The keys to verify with: those kept, fetched first if none or too old."""
        with self._lock:
            stale = self._fetched_at is None or monotonic() - self._fetched_at > KEYS_MAX_AGE
            fetch = stale and self._claim(KEYS_RETRY_INTERVAL if self._keys else 0)
            busy = self._fetching and not fetch
        if fetch:
            self._fetch()
        with self._lock:
            if self._keys:
                return list(self._keys)
        if busy:
            raise KeysUnavailable(f"fal's public keys are being fetched from {self.url}.")
        raise KeysUnavailable(f"fal's public keys could not be fetched from {self.url}.")

    def refetched(self, seen: list[Any]) -> list[Any]:
        """Keys fetched again because none of ``seen`` verified a signature: those
        not seen before, or ``[]`` when a fetch was made too recently. Raise
        :class:`KeysUnavailable` while another thread fetches them (the keys it
        brings may verify the delivery: it is not refused for good)."""
        with self._lock:
            if self._fetching:
                raise KeysUnavailable(f"fal's public keys are being fetched from {self.url}.")
            if not self._claim(MIN_REFETCH_INTERVAL):
                return []
        self._fetch()
        known = {_raw(key) for key in seen}
        with self._lock:
            return [key for key in self._keys if _raw(key) not in known]

    def _claim(self, interval: float) -> bool:
        """Whether this thread is the one to fetch now (the lock held): none is
        fetching, and none tried within ``interval`` seconds."""
        if self._fetching or (
            self._tried_at is not None and monotonic() - self._tried_at < interval
        ):
            return False
        self._fetching, self._tried_at = True, monotonic()
        self.fetches += 1
        return True

    def _fetch(self) -> None:
        """Fetch the keys, once claimed; on failure keep those held (logged:
        deliveries may fail)."""
        keys = None
        try:
            keys = fetch_keys(self.url, self.timeout, self.deadline)
        except Exception as err:  # the network's or the document's fault: said, not raised
            logger.warning("fal's public keys could not be fetched from %s: %s", self.url, err)
        finally:
            with self._lock:
                if keys is not None:
                    self._keys, self._fetched_at = keys, monotonic()
                self._fetching = False


_KEY_SETS: dict[str, KeySet] = {}
_KEY_SETS_LOCK = threading.Lock()


def key_set(url: str, timeout: tuple[float, float]) -> KeySet:
    """The process's :class:`KeySet` for ``url`` (one per URL, shared by every backend)."""
    with _KEY_SETS_LOCK:
        keys = _KEY_SETS.get(url)
        if keys is None:
            keys = _KEY_SETS[url] = KeySet(url, timeout=timeout)
        return keys


def forget_key_sets() -> None:
    """Drop every kept key set (tests; a process that must fetch the keys anew)."""
    with _KEY_SETS_LOCK:
        _KEY_SETS.clear()


def signed_message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
    """The bytes fal signs for a delivery."""
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join((request_id, user_id, timestamp, digest)).encode()


def verify(
    headers: Mapping[str, str],
    body: bytes,
    keys: KeySet,
    *,
    now: Callable[[], float] = time.time,
) -> str:
    """Check a delivery's signature; return the request id it is signed for.

    Raise :class:`SignatureRefused` (the words say why) or :class:`KeysUnavailable`.
    """
    values = []
    for name in HEADERS:
        value = headers.get(name) or ""
        if not value or len(value) > MAX_HEADER_LENGTH or not value.isprintable():
            raise SignatureRefused(f"The delivery has no valid {name} header.")
        values.append(value)
    request_id, user_id, timestamp, signature_hex = values
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise SignatureRefused("The delivery's timestamp is not a number of seconds.")
    if abs(now() - int(timestamp)) > MAX_SKEW_SECONDS:
        raise SignatureRefused("The delivery's timestamp is more than five minutes off.")
    if len(signature_hex) != SIGNATURE_HEX_LENGTH:
        raise SignatureRefused("The delivery's signature is not 64 bytes of hex.")
    try:
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        raise SignatureRefused("The delivery's signature is not hex.") from None
    message = signed_message(request_id, user_id, timestamp, body)
    held = keys.keys()
    if _verified_by(held, signature, message) or _verified_by(
        keys.refetched(held), signature, message
    ):
        return request_id
    raise SignatureRefused("The delivery's signature does not verify with fal's keys.")


def _verified_by(candidates: list[Any], signature: bytes, message: bytes) -> bool:
    for key in candidates:
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        return True
    return False


def fetch_keys(url: str, timeout: tuple[float, float], seconds: float) -> list[Any]:
    """The Ed25519 keys of the JWKS at ``url`` (others skipped), fetched in at most
    ``seconds`` in all; raise if it holds none."""
    with deadline(seconds) as limit, EnvironmentCachingSession() as session:
        try:
            response = session.send_direct("GET", url, timeout=timeout, stream=True)
            try:
                document = read_json_answer(
                    response, provider="fal", in_doubt=False, max_bytes=MAX_JWKS_BYTES
                )
            finally:
                response.close()
        except Exception as err:
            if limit.expired:
                raise TimeoutError(
                    f"the key set took longer than {seconds:g} s in all and was cut off"
                ) from err
            raise
    if response.status_code != 200:
        raise ValueError(f"the key set answered HTTP {response.status_code}")
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("the key set has no list of keys")
    keys = []
    for entry in entries[:MAX_KEYS]:
        key = _public_key(entry)
        if key is not None:
            keys.append(key)
    if not keys:
        raise ValueError("the key set holds no Ed25519 key")
    return keys


def _public_key(entry: Any) -> Any:
    """An Ed25519 public key from one JWK, or ``None`` if it is not one."""
    if not isinstance(entry, dict) or entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
        return None
    x = entry.get("x")
    if not isinstance(x, str) or len(x) > 100:
        return None
    # base64url, with or without its padding.
    try:
        raw = base64.urlsafe_b64decode(x.rstrip("=") + "=" * (-len(x.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 32:
        return None
    return Ed25519PublicKey.from_public_bytes(raw)


def _raw(key: Any) -> bytes:
    return key.public_bytes_raw()
