"""Fetching a provider's result picture safely, and storing it once per job.

A result URL comes from the provider's answer, so it is untrusted input: it is
fetched only over https from a public address, or from ``BASE_URL``'s own host
or a host listed in ``RESULT_HOSTS`` (a sandbox on loopback, a CDN behind a
private network). Each connection is checked again once made, at the address
it reached (a name can resolve differently the second time). It is streamed
to a spooled temporary file with a size cap, and must decode as an image
before it is stored.
"""

import ipaddress
import socket
import tempfile
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
from django.core.files import File
from PIL import Image, UnidentifiedImageError

from .backends.base import (
    PermanentError,
    ProviderConnectionError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    TransientError,
)
from .http import EnvironmentCachingSession, PeerCheckingAdapter
from .storage import EXTENSIONS, result_image_name

CHUNK_SIZE = 64 * 1024
# Kept in memory up to this size, then on disk: memory stays flat for big results.
SPOOL_MAX_MEMORY = 1024 * 1024
MAX_REDIRECTS = 3


class ResultURLForbidden(PermanentError):
    """The result URL points where the worker must not go."""

    job_error_code = "result_unavailable"


class InvalidResultError(TransientError):
    """What the result URL served is not a usable picture."""

    job_error_code = "result_unavailable"


class ResultDownloadError(TransientError):
    """The result could not be downloaded (yet)."""

    job_error_code = "result_unavailable"


@dataclass
class DownloadedResult:
    file: tempfile.SpooledTemporaryFile
    format: str  # Pillow's format name: "JPEG", "PNG" or "WEBP"
    size: int

    @property
    def extension(self):
        return EXTENSIONS[self.format]

    def close(self):
        self.file.close()


class ResultFetcher:
    """Downloads result pictures under the URL policy. Safe to share between threads
    as long as each thread passes its own ``session`` (see :meth:`fetch`)."""

    def __init__(self, *, base_url, extra_hosts=(), max_bytes, timeout, resolver=None):
        self.trusted_hosts = {h.lower() for h in extra_hosts if h}
        base_host = urlsplit(base_url).hostname
        if base_host:
            self.trusted_hosts.add(base_host.lower())
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.resolver = resolver or socket.getaddrinfo

    # Policy -----------------------------------------------------------------

    def check_url(self, url):
        """Raise :class:`ResultURLForbidden` unless ``url`` may be fetched."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            parts.port  # noqa: B018  (a malformed port raises ValueError here)
        except ValueError as err:
            raise ResultURLForbidden(f"The result URL is malformed: {url!r}") from err
        if parts.scheme not in ("http", "https") or not host:
            raise ResultURLForbidden(f"The result URL is not an http(s) URL: {url!r}")
        if host in self.trusted_hosts:
            return
        if parts.scheme != "https":
            raise ResultURLForbidden(
                f"The result URL is plain http on an untrusted host ({host}); "
                "add the host to TRYON['RESULT_HOSTS'] to allow it."
            )
        for address in self._addresses(host, parts.port or 443):
            _refuse_unless_public(host, address, "resolves to")

    def check_peer(self, host, address):
        """Raise :class:`ResultURLForbidden` unless a connection made to ``host``
        may go on at ``address``, the address it reached.

        The second look, once connected (see :meth:`new_session`): the
        connection resolved the name again, and the answer may have changed
        since :meth:`check_url` (DNS rebinding).
        """
        host = host.strip("[]").lower()
        if host in self.trusted_hosts:
            return
        _refuse_unless_public(host, ipaddress.ip_address(address.split("%")[0]), "connected to")

    def new_session(self):
        """A session for :meth:`fetch`, one per thread, whose direct connections
        are checked by :meth:`check_peer` before a request is sent on them."""
        return EnvironmentCachingSession(PeerCheckingAdapter(self.check_peer))

    def _addresses(self, host, port):
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            pass
        else:
            return [literal]
        try:
            infos = self.resolver(host, port, proto=socket.IPPROTO_TCP)
        except OSError as err:
            raise ResultDownloadError(f"The result host {host} cannot be resolved: {err}") from err
        return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]

    # Download ---------------------------------------------------------------

    def fetch(self, url, session):
        """Download ``url`` and return a :class:`DownloadedResult` (the caller closes it).

        ``session`` is one from :meth:`new_session` (any
        :class:`~django_tryon.http.EnvironmentCachingSession` works, without the
        check of each connection's address).
        """
        for _ in range(MAX_REDIRECTS + 1):
            self.check_url(url)
            response = self._get(url, session)
            if response.is_redirect:
                location = response.headers.get("Location", "")
                response.close()
                url = urljoin(url, location)
                continue
            try:
                return self._read(response)
            finally:
                response.close()
        raise ResultDownloadError("The result URL redirected too many times.")

    def _get(self, url, session):
        try:
            # Redirects are followed by fetch(), each target checked first.
            response = session.send_direct("GET", url, stream=True, timeout=self.timeout)
        except requests.exceptions.Timeout as err:
            raise ProviderTimeoutError("The result download timed out.") from err
        except requests.exceptions.RequestException as err:
            raise ProviderConnectionError(f"The result download failed: {err}") from err
        if response.status_code >= 500:
            response.close()
            raise ProviderUnavailableError(
                f"The result URL answered HTTP {response.status_code}.",
                status_code=response.status_code,
            )
        if response.status_code >= 400:
            response.close()
            raise ResultDownloadError(
                f"The result URL answered HTTP {response.status_code}.",
                status_code=response.status_code,
            )
        return response

    def _read(self, response):
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise InvalidResultError(
                f"The result is {int(declared)} bytes, over the {self.max_bytes} byte cap."
            )
        spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_MEMORY)  # noqa: SIM115 (returned open)
        size = 0
        try:
            for chunk in response.iter_content(CHUNK_SIZE):
                size += len(chunk)
                if size > self.max_bytes:
                    raise InvalidResultError(f"The result is over the {self.max_bytes} byte cap.")
                spooled.write(chunk)
            spooled.seek(0)
            image_format = _image_format(spooled)
            spooled.seek(0)
        except requests.exceptions.RequestException as err:
            spooled.close()
            raise ResultDownloadError(f"The result download broke off: {err}") from err
        except BaseException:
            spooled.close()
            raise
        return DownloadedResult(file=spooled, format=image_format, size=size)


def _refuse_unless_public(host, address, how):
    if not address.is_global or address.is_multicast:
        raise ResultURLForbidden(
            f"The result host {host} {how} a non-public address ({address}); "
            "add it to TRYON['RESULT_HOSTS'] if it is yours."
        )


def _image_format(fileobj):
    """The picture's format, after checking it decodes; raises InvalidResultError."""
    try:
        with Image.open(fileobj) as image:
            image_format = image.format
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise InvalidResultError("The result is not a readable image.") from err
    except Image.DecompressionBombError as err:
        raise InvalidResultError("The result image is implausibly large.") from err
    if image_format not in EXTENSIONS:
        raise InvalidResultError(f"The result is a {image_format} image, not JPEG, PNG or WebP.")
    return image_format


def store_result(job, downloaded):
    """Save ``downloaded`` as the job's result and return the storage name.

    The name is the job's own (see :func:`result_image_name`), and a file left
    there by a worker that died before recording it is replaced, not kept
    beside: a job never has two result files.
    """
    # The field's own storage, so the file lands where the row will look for it.
    storage = job._meta.get_field("result_image").storage
    name = result_image_name(job, downloaded.extension)
    if storage.exists(name):
        storage.delete(name)
    downloaded.file.seek(0)
    saved = storage.save(name, File(downloaded.file, name=name))
    return saved


def result_from_content(content, max_bytes):
    """Wrap a picture a synchronous provider returned inline as a :class:`DownloadedResult`."""
    if len(content) > max_bytes:
        raise InvalidResultError(f"The result is over the {max_bytes} byte cap.")
    spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_MEMORY)  # noqa: SIM115 (returned open)
    spooled.write(content)
    spooled.seek(0)
    try:
        image_format = _image_format(spooled)
    except BaseException:
        spooled.close()
        raise
    spooled.seek(0)
    return DownloadedResult(file=spooled, format=image_format, size=len(content))
