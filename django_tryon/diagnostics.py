"""What ``manage.py tryon_check`` checks: the configuration against the real world.

The system checks (:mod:`django_tryon.checks`) read the settings; these
diagnostics act on them: they call the provider with the configured key,
write, read back and delete a file on each storage, fetch a stored file
through its URL, and look up the hosts results may come from. Each returns
:class:`Finding` objects, one line each for the command to print.
"""

import contextlib
import io
import ipaddress
import json
import secrets
import socket
import uuid
from dataclasses import asdict, dataclass
from urllib.parse import urljoin, urlsplit

import requests
from django.core.checks import ERROR, run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import InvalidStorageError, storages
from PIL import Image

from . import callbacks
from .backends import configured_classes, get_backend, get_backends, get_fallback_backends
from .backends.base import ConfigurationError, OutOfCreditsError, TransientError, TryOnError
from .checks import TAG
from .conf import tryon_settings
from .deadlines import deadline
from .http import EnvironmentCachingSession
from .redaction import redact
from .webhooks import NOT_VALID

OK, SKIPPED, FAILED = "ok", "skipped", "failed"
#: (connect, read) timeouts of every request made here: an operator waits on them,
#: at most their sum in all for each (a server sending a byte at a time included).
TIMEOUT = (5.0, 10.0)
#: The most of an answer read here: a stored test picture, or the webhook's refusal.
MAX_ANSWER_BYTES = 64 * 1024
#: Where the test files go on each storage (deleted before the command ends).
CHECK_FOLDER = "tryon/check"


@dataclass(frozen=True)
class Finding:
    """One line of the report: what was checked, how it went, and what to do."""

    name: str
    status: str  # OK, SKIPPED or FAILED
    message: str
    hint: str = ""

    def __post_init__(self):
        # The words of an error quoted here may quote the request, key included.
        object.__setattr__(self, "message", redact(self.message))

    def as_dict(self):
        return asdict(self)


def run_all(site_url=None):
    """Every diagnostic, in the order a shop sets things up."""
    findings = [check_settings(), check_provider(), *check_fallbacks()]
    findings += check_storages()
    findings.append(check_media_serving(site_url))
    findings.append(check_result_hosts())
    if tryon_settings.WEBHOOK_BASE_URL:
        findings.append(check_webhooks())
    return findings


def failed(findings):
    return [finding for finding in findings if finding.status == FAILED]


# Settings ----------------------------------------------------------------------


def check_settings():
    """The system checks of the app, errors only (warnings are for ``manage.py check``)."""
    errors = [m for m in run_checks(tags=[TAG]) if m.level >= ERROR]
    if not errors:
        return Finding("settings", OK, "The system checks found no error in TRYON.")
    return Finding(
        "settings",
        FAILED,
        "; ".join(f"{m.id}: {m.msg}" for m in errors),
        "Run manage.py check and fix what it says first: the checks below may fail because of it.",
    )


# Provider ----------------------------------------------------------------------


def check_provider():
    """Ask the provider for the account's credits, with the configured key."""
    try:
        backend = get_backend(connect_timeout=TIMEOUT[0], read_timeout=TIMEOUT[1])
    except (ImproperlyConfigured, TypeError, ValueError) as err:
        return Finding(
            "provider",
            FAILED,
            f"The backend {tryon_settings.BACKEND!r} cannot be built: {err}",
            "Fix TRYON['BACKEND'] and its settings (manage.py check says how).",
        )
    return ask_provider(backend, "provider", "TRYON")


def check_fallbacks():
    """Ask each of ``FALLBACK_BACKENDS`` for its credits, with its own key."""
    try:
        fallbacks = get_fallback_backends(connect_timeout=TIMEOUT[0], read_timeout=TIMEOUT[1])
    except (ImproperlyConfigured, TypeError, ValueError) as err:
        return [
            Finding(
                "fallbacks",
                FAILED,
                f"TRYON['FALLBACK_BACKENDS'] cannot be built: {err}",
                "Fix TRYON['FALLBACK_BACKENDS'] (manage.py check says how).",
            )
        ]
    return [
        ask_provider(
            backend, f"fallback {backend.provider_name}", f"TRYON['FALLBACK_BACKENDS'][{index}]"
        )
        for index, backend in enumerate(fallbacks)
    ]


def ask_provider(backend, name, setting):
    """The finding ``name`` of ``backend``'s credits query (``setting``: where its key
    and address are set, for the hints); the backend is closed after."""
    where = f"{backend.provider_name or type(backend).__name__} at {backend.base_url}"
    if hasattr(backend, "check_credentials"):
        return _ask_for_a_token(backend, name, where)
    try:
        answer = backend.credits()
    except ConfigurationError as err:
        return Finding(
            name,
            FAILED,
            f"{where} refused the API key: {err}",
            f"Set {setting}['API_KEY'] to the key of an active account (from the "
            "provider's dashboard), for example from an environment variable.",
        )
    except OutOfCreditsError as err:
        return Finding(
            name,
            FAILED,
            f"{where} says the account has no credits left: {err}",
            "Top up the provider account: every job fails as out_of_credits until then"
            " (or goes to the next provider, with failover).",
        )
    except TransientError as err:
        return Finding(
            name,
            FAILED,
            f"{where} could not be reached: {err}",
            f"Check {setting}['BASE_URL'] and that this machine can reach it (firewall, "
            "proxy, DNS); for the sandbox, start manage.py tryon_sandbox.",
        )
    except TryOnError as err:
        return Finding(
            name,
            FAILED,
            f"{where} did not answer as expected: {err}",
            f"Check {setting}['BASE_URL'] points at the provider's API, not another site.",
        )
    finally:
        backend.close()
    if answer is None:
        return Finding(
            name,
            SKIPPED,
            f"{where}: this backend has no call to check the key without paying.",
            "The first try-on tells: watch the worker's log.",
        )
    remaining = _number(answer.remaining)
    if answer.remaining < tryon_settings.CREDITS_WARNING_THRESHOLD:
        return Finding(
            name,
            FAILED,
            f"{where} accepted the API key, but only {remaining} credits are left "
            f"(CREDITS_WARNING_THRESHOLD is {tryon_settings.CREDITS_WARNING_THRESHOLD:g}).",
            "Top up the provider account before jobs fail as out_of_credits.",
        )
    return Finding(name, OK, f"{where} accepted the API key: {remaining} credits left.")


def _ask_for_a_token(backend, name, where):
    """The finding of a backend authenticated by Google's credentials (Vertex AI):
    loaded and given a token by Google's token service, which costs nothing. The
    predict itself (the role, the API turned on, the model) is charged: not tried."""
    try:
        project = backend.check_credentials()
    except ConfigurationError as err:
        return Finding(
            name,
            FAILED,
            f"{where}: {err}",
            "Set GOOGLE_APPLICATION_CREDENTIALS to the key file of a service account with "
            "the Vertex AI User role (or run where Google provides credentials), and "
            "OPTIONS['project'] when the credentials name no project.",
        )
    except TryOnError as err:
        return Finding(
            name,
            FAILED,
            f"{where}: no token could be had: {err}",
            "Check that this machine reaches Google's token service (firewall, proxy, DNS).",
        )
    finally:
        backend.close()
    return Finding(
        name,
        OK,
        f"{where}: Google's token service accepted the credentials, for project "
        f"{project!r}. No predict is tried (each is charged): the first try-on checks "
        "the role and the model.",
    )


def _number(value):
    """``1,000,000`` or ``12.5``: a balance as people write it."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}"


# Storage and media ----------------------------------------------------------------


def _probe_picture():
    """A tiny PNG: what is stored and served is a picture, as results are."""
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (180, 90, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def _probe_name():
    return f"{CHECK_FOLDER}/{secrets.token_urlsafe(12)}.png"


def _keys_by_alias():
    """``{alias: [TRYON keys naming it]}``: a storage both keys share is checked once."""
    aliases: dict[str, list[str]] = {}
    for key in ("UPLOAD_STORAGE", "RESULT_STORAGE"):
        aliases.setdefault(getattr(tryon_settings, key), []).append(key)
    return aliases


def check_storages():
    """Write, read back and delete a file on each storage ``TRYON`` names."""
    return [_check_storage(alias, keys) for alias, keys in _keys_by_alias().items()]


def _check_storage(alias, keys):
    name = f"storage {alias!r}"
    used_for = " and ".join(f"TRYON[{key!r}]" for key in keys)
    try:
        storage = storages[alias]
    except InvalidStorageError as err:
        return Finding(name, FAILED, f"{used_for}: {err}", "Add the alias to STORAGES.")
    content = _probe_picture()
    stored = None
    try:
        stored = storage.save(_probe_name(), ContentFile(content))
        with storage.open(stored, "rb") as file:
            read_back = file.read()
        if read_back != content:
            raise OSError("the file read back differs from the one written")
        storage.delete(stored)
        if storage.exists(stored):
            raise OSError("the file is still there after delete()")
        stored = None
    except Exception as err:  # any backend's fault, reported rather than raised
        return Finding(
            name,
            FAILED,
            f"{used_for}: {type(err).__name__}: {err}",
            "Check the storage's settings and permissions: the app writes shoppers' "
            "photos and results there, and deletes them when their time is up.",
        )
    finally:
        if stored is not None:
            _delete_quietly(storage, stored)
    return Finding(name, OK, f"{used_for}: wrote, read back and deleted a file.")


def _delete_quietly(storage, stored):
    # Already failing, or only tidying up: the finding says what matters.
    with contextlib.suppress(Exception):
        storage.delete(stored)


def check_media_serving(site_url=None):
    """A file stored on ``RESULT_STORAGE`` answers at its URL, as shoppers' results must."""
    try:
        storage = storages[tryon_settings.RESULT_STORAGE]
        stored = storage.save(_probe_name(), ContentFile(_probe_picture()))
    except Exception as err:
        return Finding(
            "media", SKIPPED, f"No file could be stored to serve ({err}).", "Fix the storage first."
        )
    try:
        return _fetch_stored(storage, stored, site_url)
    finally:
        _delete_quietly(storage, stored)


def _fetch_stored(storage, stored, site_url):
    url = storage.url(stored)
    served_by_the_site = not urlsplit(url).scheme
    if served_by_the_site:
        if not site_url:
            return Finding(
                "media",
                SKIPPED,
                f"Result URLs are relative to the site ({url}): they can only be fetched "
                "from the running site.",
                "Pass --site-url with the site's address (for runserver, "
                "--site-url http://127.0.0.1:8000) while it runs.",
            )
        url = urljoin(site_url, url)
    try:
        response, body = _exchange("GET", url, allow_redirects=True)
    except requests.RequestException as err:
        return Finding(
            "media",
            FAILED,
            f"GET {url} failed: {err}",
            "Is the site running at that address? Shoppers' browsers load results from these URLs.",
        )
    if response.status_code != 200 or body != _probe_picture():
        return Finding(
            "media",
            FAILED,
            f"GET {url} answered {response.status_code}, not the file just stored.",
            _serving_hint(served_by_the_site),
        )
    return Finding("media", OK, f"GET {url} answered 200 with the file just stored.")


def _serving_hint(served_by_the_site):
    if served_by_the_site:
        return (
            "MEDIA_URL is not served. In development add "
            "`urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)` "
            "to urls.py (DEBUG = True); in production serve MEDIA_ROOT from the web "
            "server, or use a storage with its own URLs (docs/deployment.md)."
        )
    return "The storage's URLs must serve its files: check its base URL or custom domain."


# Result hosts -------------------------------------------------------------------------


def _provider_hosts():
    """``{host: provider}`` of each configured backend's address, as the worker trusts
    them: its results may come from there (the backend's own default address where
    ``BASE_URL`` is not set, such as Vertex AI's, made from its location)."""
    try:
        backends = get_backends()
    except (ImproperlyConfigured, ImportError, TypeError, ValueError):
        return {}  # the system checks say why (the settings line)
    hosts: dict[str, str] = {}
    for backend in backends:
        name = backend.provider_name or type(backend).__name__
        for host in [urlsplit(str(backend.base_url)).hostname, *sorted(backend.result_hosts())]:
            if host:
                hosts.setdefault(host, name)
        backend.close()
    return hosts


def check_result_hosts(resolver=socket.getaddrinfo):
    """Where results may be downloaded from: every host ``RESULT_HOSTS`` lists resolves."""
    listed = tryon_settings.RESULT_HOSTS
    if isinstance(listed, str) or not all(isinstance(host, str) for host in listed):
        return Finding(
            "result hosts", FAILED, "TRYON['RESULT_HOSTS'] is not a list of host names.", ""
        )
    problems = []
    for host in listed:
        if "/" in host or (":" in host.strip("[]") and not _is_address(host)):
            problems.append(f"{host!r} is not a host name (no scheme, port or path)")
            continue
        try:
            resolver(host, 443, proto=socket.IPPROTO_TCP)
        except OSError as err:
            problems.append(f"{host!r} does not resolve ({err})")
    allowed = ", ".join(
        [f"{host} ({provider}'s address)" for host, provider in _provider_hosts().items()]
        + list(listed)
    )
    summary = (
        f"Results may come from {allowed}, and from https hosts on public addresses."
        if allowed
        else "Results may come from https hosts on public addresses."
    )
    if problems:
        return Finding(
            "result hosts",
            FAILED,
            f"{summary} But {'; '.join(problems)}.",
            "Correct TRYON['RESULT_HOSTS']: bare host names such as 'cdn.example.com'.",
        )
    return Finding("result hosts", OK, summary)


def _is_address(host):
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


# Webhooks -----------------------------------------------------------------------------


def check_webhooks():
    """The webhook endpoint answers at ``WEBHOOK_BASE_URL``, as the provider will call it.

    A delivery for a made-up job with a made-up secret is posted there: the
    endpoint refuses it (403, in its own words, nothing changed), which shows
    that the address reaches this app's view through whatever stands in front
    of the site (as far as this machine can tell: the provider calls from the
    internet).
    """
    classes = configured_classes()  # the primary and its fallbacks
    if not classes:
        return Finding("webhooks", SKIPPED, "No backend can be imported.", "Run manage.py check.")
    pushing = [cls for cls in classes if getattr(cls, "supports_callbacks", False)]
    if not pushing:
        names = ", ".join(cls.__name__ for cls in classes)
        return Finding(
            "webhooks",
            SKIPPED,
            f"WEBHOOK_BASE_URL is set, but {names} cannot call the shop back: its jobs are polled.",
            "Remove TRYON['WEBHOOK_BASE_URL'], or use a backend that pushes.",
        )
    # One endpoint is enough to show the address reaches this app's views.
    backend_class = pushing[0]
    try:
        url = callbacks.webhook_url(
            backend_class.provider_name, uuid.uuid4(), f"tryon-check-{secrets.token_hex(8)}"
        )
    except Exception as err:  # E030/E031 say why; one line here, not a traceback
        return Finding(
            "webhooks",
            FAILED,
            f"No webhook URL can be made: {err}",
            "Run manage.py check: WEBHOOK_BASE_URL must be an origin, and "
            "django_tryon.urls included.",
        )
    try:
        response, body = _exchange("POST", url, json={}, allow_redirects=False)
    except requests.RequestException as err:
        return Finding(
            "webhooks",
            FAILED,
            f"POST {url} failed: {type(err).__name__}.",
            "The provider must reach the shop at TRYON['WEBHOOK_BASE_URL']: is the site "
            "running there, and do DNS, the firewall and the proxy in front of it let it "
            "through? Until then every job waits WEBHOOK_FALLBACK_INTERVAL for its result.",
        )
    if _is_our_refusal(response, body):
        return _webhook_keys_finding() or Finding(
            "webhooks",
            OK,
            f"POST {url} reached the webhook endpoint (a made-up delivery refused with 403, "
            "as it must be).",
        )
    return Finding(
        "webhooks",
        FAILED,
        f"POST {url} answered {response.status_code}, not the webhook endpoint.",
        "Something else answers at that address (a redirect, such as http to https: "
        "then set the origin it leads to; a login wall; another site): the provider's "
        "deliveries would be lost, and every job would wait WEBHOOK_FALLBACK_INTERVAL.",
    )


def _webhook_keys_finding():
    """A failed finding when a backend that checks its deliveries' signatures (fal)
    cannot fetch the keys to check them with, else ``None``.

    Without them every delivery is refused with 503 and each job waits
    ``WEBHOOK_FALLBACK_INTERVAL`` for its poll: the case of fal's sandbox with the
    ``jwks_url`` of fal itself, or of a shop that cannot reach fal's key set.
    """
    try:
        backends = get_backends(connect_timeout=TIMEOUT[0], read_timeout=TIMEOUT[1])
    except (ImproperlyConfigured, ImportError, TypeError, ValueError):
        return None  # the settings line says why
    try:
        for backend in backends:
            keys_problem = getattr(backend, "webhook_keys_problem", None)
            problem = keys_problem() if keys_problem is not None else ""
            if problem:
                url = backend.options.get("jwks_url", "")
                return Finding(
                    "webhooks",
                    FAILED,
                    f"The endpoint answers, but {backend.provider_name}'s webhook keys could "
                    f"not be fetched from {url} ({problem}): every delivery would be refused "
                    "(503), and every job would wait WEBHOOK_FALLBACK_INTERVAL for its poll.",
                    "Set OPTIONS['jwks_url'] to where the provider publishes its keys: fal's "
                    "own (the default) from a machine that reaches it; the sandbox's "
                    "(tryon_sandbox --protocol fal prints it: its address + "
                    "/.well-known/jwks.json) when BASE_URL is the sandbox.",
                )
    finally:
        for backend in backends:
            backend.close()
    return None


def _is_our_refusal(response, body):
    if response.status_code != 403:
        return False
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return False
    return error == NOT_VALID


# Requests -----------------------------------------------------------------------------


def _exchange(method, url, **kwargs):
    """``(response, body)`` of a request held to ``TIMEOUT`` and their sum in all,
    the body read up to ``MAX_ANSWER_BYTES``; raise Requests' errors."""
    seconds = sum(TIMEOUT)
    with deadline(seconds) as limit, EnvironmentCachingSession() as session:
        try:
            response = session.request(method, url, timeout=TIMEOUT, stream=True, **kwargs)
            with contextlib.closing(response):
                return response, _read_capped(response)
        except requests.RequestException as err:
            if limit.expired:
                raise requests.Timeout(
                    f"no complete answer within {seconds:g} s in all: cut off"
                ) from err
            raise


def _read_capped(response):
    body = b""
    for chunk in response.iter_content(MAX_ANSWER_BYTES):
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            break  # larger than anything checked here: not the answer looked for
    return body
