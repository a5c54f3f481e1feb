"""Fetching a provider's result picture safely, and storing it once per job.

A result URL comes from the provider's answer, so it is untrusted input: it is
fetched only over https, on the standard port, from a plain host name or
address that is public, or from ``BASE_URL``'s own host or a host listed in
``RESULT_HOSTS`` (a sandbox on loopback, a CDN behind a private network).

The URL is read once, by the parser the HTTP client itself uses (urllib3's),
and anything two parsers could read differently is refused: backslashes,
whitespace and control characters, user names and passwords. The URL fetched
is the one checked, as the client normalised it. Each connection resolves the
host again, checks every address, and connects only to an allowed one: no
TCP connection is ever opened to a refused address, and a name that answers
differently the second time (DNS rebinding) is caught there. It is streamed
to a spooled temporary file with a size cap and a total deadline, and must
decode as an image before it is stored.
"""

import ipaddress
import re
import socket
import tempfile
from dataclasses import dataclass
from urllib.parse import urljoin

import requests
from django.core.files import File
from PIL import Image, UnidentifiedImageError
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from . import ipv6, segments
from .backends.base import (
    PermanentError,
    ProviderConnectionError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    TransientError,
)
from .conf import DEFAULTS
from .deadlines import deadline, lookup
from .http import EnvironmentCachingSession, PeerCheckingAdapter
from .storage import EXTENSIONS, result_image_name

CHUNK_SIZE = 64 * 1024
# Kept in memory up to this size, then on disk: memory stays flat for big results.
SPOOL_MAX_MEMORY = 1024 * 1024
MAX_REDIRECTS = 3
# What no URL a client could read two ways holds: ASCII controls, space, backslash.
AMBIGUOUS_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")
# A public DNS name: dot-separated labels of letters, digits and hyphens, the last
# one starting with a letter as every top-level domain does (so "2130706433" or
# "0x7f.1", which resolvers read as addresses, are not names).
PUBLIC_HOSTNAME = re.compile(
    r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$"
)
URL_SHOWN_CHARS = 200
# The host and port as written (the user name and password are refused before).
AUTHORITY = re.compile(
    r"^[a-z][a-z0-9+.-]*://(?P<host>\[[^\]/]*\]|[^:/?#\[]*)(?::(?P<port>[^/?#]*))?",
    re.IGNORECASE,
)
PLAIN_PORT = re.compile(r"^[1-9][0-9]{0,4}$")


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

    def __init__(
        self,
        *,
        base_url,
        extra_hosts=(),
        max_bytes,
        timeout,
        resolver=None,
        total_timeout=DEFAULTS["RESULT_DOWNLOAD_TIMEOUT"],
    ):
        self.trusted_hosts = {h.lower() for h in extra_hosts if h}
        # BASE_URL's host as the HTTP client reads it, the one its calls reach.
        base_host = _client_url_host(base_url)
        if base_host:
            self.trusted_hosts.add(base_host)
        self.max_bytes = max_bytes
        self.timeout = timeout  # (connect, read): each wait for bytes
        self.total_timeout = total_timeout  # the whole download, redirects included
        self.resolver = resolver or socket.getaddrinfo

    # Policy -----------------------------------------------------------------

    def check_url(self, url):
        """The URL to fetch: ``url`` as the HTTP client reads it, without its fragment.

        Raises :class:`ResultURLForbidden` unless it may be fetched.
        """
        if not isinstance(url, str) or not url.isascii() or AMBIGUOUS_CHARACTERS.search(url):
            raise ResultURLForbidden(
                f"The result URL holds characters a URL may not: {_shown(url)}."
            )
        try:
            parts = parse_url(url)
        except LocationParseError as err:
            raise ResultURLForbidden(f"The result URL is malformed: {_shown(url)}.") from err
        scheme = (parts.scheme or "").lower()
        host = (parts.host or "").lower()
        if scheme not in ("http", "https") or not host:
            raise ResultURLForbidden(f"The result URL is not an http(s) URL: {_shown(url)}.")
        if parts.auth is not None:
            raise ResultURLForbidden("The result URL carries a user name or password.")
        authority = AUTHORITY.match(url)
        if "%" in host or (authority and "%" in authority.group("host")):
            raise ResultURLForbidden(f"The result URL's host is escaped: {_shown(url)}.")
        if not _plain_port(url):
            raise ResultURLForbidden(f"The result URL's port is not a plain number: {_shown(url)}.")
        checked = parts._replace(scheme=scheme, host=host, fragment=None).url
        if self._client_host(checked) != (host, parts.port):
            raise ResultURLForbidden(f"The result URL reads two ways: {_shown(url)}.")
        if host.strip("[]") in self.trusted_hosts:
            return checked
        if scheme != "https":
            raise ResultURLForbidden(
                f"The result URL is plain http on an untrusted host ({host}); "
                "add the host to TRYON['RESULT_HOSTS'] to allow it."
            )
        literal = _ip_literal(host)
        if literal is None and not PUBLIC_HOSTNAME.match(host):
            raise ResultURLForbidden(f"The result URL's host is not a public name: {host}.")
        for address in [literal] if literal else self._addresses(host, 443):
            _refuse_unless_public(host, address, "resolves to")
        return checked

    def check_peer(self, host, address):
        """Raise :class:`ResultURLForbidden` unless a connection to ``host`` may be
        made at ``address``, one of the addresses the name resolved to as the
        connection was about to be made.

        Called before connecting (see :meth:`new_session`): the name was resolved
        again for the connection, and the answer may have changed since
        :meth:`check_url` (DNS rebinding).
        """
        host = host.strip("[]").lower()
        if host in self.trusted_hosts:
            return
        _refuse_unless_public(host, _public_form(address), "resolves, when connecting, to")

    def new_session(self):
        """A session for :meth:`fetch`, one per thread, whose direct connections
        go only to addresses :meth:`check_peer` allows."""
        return EnvironmentCachingSession(
            PeerCheckingAdapter(self.check_peer, resolver=self._resolve_for_connection)
        )

    def _resolve_for_connection(self, *args, **kwargs):
        # Through self.resolver as it is when the connection is made (tests replace it).
        return self.resolver(*args, **kwargs)

    @staticmethod
    def _client_host(url):
        """``(host, port)`` of ``url`` as Requests prepares it, read back by urllib3."""
        prepared = requests.PreparedRequest()
        try:
            prepared.prepare_url(url, None)
            parts = parse_url(prepared.url or "")
        except (requests.exceptions.RequestException, LocationParseError, ValueError):
            return None
        return (parts.host or "").lower(), parts.port

    def _addresses(self, host, port):
        try:
            infos = lookup(self.resolver, host, port, proto=socket.IPPROTO_TCP)
        except OSError as err:
            raise ResultDownloadError(f"The result host {host} cannot be resolved: {err}") from err
        return [_public_form(str(info[4][0])) for info in infos]

    # Download ---------------------------------------------------------------

    def fetch(self, url, session):
        """Download ``url`` and return a :class:`DownloadedResult` (the caller closes it).

        ``session`` is one from :meth:`new_session` (any
        :class:`~django_tryon.http.EnvironmentCachingSession` works, without the
        check of each connection's address, and without the total deadline).
        """
        with deadline(self.total_timeout) as limit:
            try:
                return self._fetch(url, session)
            except TransientError as err:
                if not limit.expired:
                    raise
                raise ResultDownloadError(
                    f"The result download took longer than {self.total_timeout:g} s in all "
                    "(TRYON['RESULT_DOWNLOAD_TIMEOUT']) and was cut off."
                ) from err

    def _fetch(self, url, session):
        for _ in range(MAX_REDIRECTS + 1):
            url = self.check_url(url)
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


def _shown(url):
    """``url`` as an error text quotes it: escaped, and cut short."""
    return repr(url)[:URL_SHOWN_CHARS]


def _client_url_host(url):
    """``url``'s host as urllib3 reads it (lower case, IPv6 unbracketed), or ``""``."""
    if not url:
        return ""
    try:
        return (parse_url(url).host or "").strip("[]").lower()
    except LocationParseError:
        return ""


def _plain_port(url):
    """Whether ``url``'s port, if it names one, is written as a number from 1 to
    65535 without leading zeros (``:080`` or ``:`` are read differently by
    different parsers)."""
    authority = AUTHORITY.match(url)
    port = authority.group("port") if authority else None
    return port is None or (PLAIN_PORT.match(port) is not None and int(port) <= 65535)


def _ip_literal(host):
    """The address ``host`` spells in its one canonical form, else ``None``."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return _public_form(str(address)) if str(address) == host.strip("[]") else None


def _public_form(address):
    """``address`` (text) as an address to judge: an IPv6 address that stands for
    an IPv4 one (IPv4-mapped, NAT64, 6to4) as that IPv4 address."""
    return ipv6.judged_form(ipaddress.ip_address(address.split("%")[0]))


def _refuse_unless_public(host, address, how):
    if not ipv6.is_public(address):
        raise ResultURLForbidden(
            f"The result host {host} {how} a non-public address ({address}); "
            "add it to TRYON['RESULT_HOSTS'] if it is yours."
        )


def _image_format(fileobj):
    """The picture's format, after checking it decodes; raises InvalidResultError."""
    if segments.has_too_many_segments(fileobj):
        raise InvalidResultError(
            "The result is not a readable image: it has more segments than any picture."
        )
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
