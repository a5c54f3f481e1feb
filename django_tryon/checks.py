"""System checks: a misconfigured ``TRYON`` is reported at start-up, with a hint.

One function per check, each registered under the ``django_tryon`` tag (and
Django's own tag where one fits). ``docs/settings.md`` lists every id.
"""

import importlib.util
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch, reverse

from .backends import FALLBACK_KEYS, configured_classes, fallback_class
from .conf import DEFAULTS, tryon_settings
from .redaction import api_key

LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}

POSITIVE_NUMBERS = (
    "CONCURRENCY",
    "BATCH_SIZE",
    "LEASE_SECONDS",
    "MAX_ATTEMPTS",
    "CONNECT_TIMEOUT",
    "READ_TIMEOUT",
    "JOB_EXPIRY",
    "RESULT_MAX_BYTES",
    "RESULT_DOWNLOAD_TIMEOUT",
    "MAX_UPLOAD_BYTES",
    "MAX_IMAGE_PIXELS",
    "INTAKE_MAX_DECODED_BYTES",
    "INTAKE_MAX_PARALLEL_DECODES",
    "WEBHOOK_FALLBACK_INTERVAL",
    "FAILOVER_AFTER",
    "FAILOVER_PROBE_INTERVAL",
)
NON_NEGATIVE_NUMBERS = (
    "POLL_INTERVAL",
    "IDLE_INTERVAL",
    "CREDITS_WARNING_THRESHOLD",
    "RETRY_BACKOFF",
    "RETRY_BACKOFF_MAX",
)


#: The tag of every django-tryon check: ``manage.py check --tag django_tryon``.
TAG = "django_tryon"

#: Apps the try-on app cannot work without, and what each is for.
REQUIRED_APPS = {
    "rest_framework": "the shopper API (django_tryon.urls) is built on Django REST framework",
}


def tryon_check(*tags):
    """Register a check under :data:`TAG` and any of Django's ``Tags`` it also belongs to."""
    return register(TAG, *tags)


@tryon_check()
def check_setting_keys(app_configs, **kwargs):
    """E005: ``TRYON`` is a dict of known keys (reading it never raises; this says why)."""
    return [
        Error(
            problem,
            hint="Remove or correct it: docs/settings.md lists every key.",
            id="django_tryon.E005",
        )
        for problem in tryon_settings.problems()
    ]


@tryon_check()
def check_required_apps(app_configs, **kwargs):
    """E011: the apps django-tryon needs are in ``INSTALLED_APPS``."""
    return [
        Error(
            f"{app!r} is not in INSTALLED_APPS: {reason}.",
            hint=f"Add {app!r} to INSTALLED_APPS (before 'django_tryon').",
            id="django_tryon.E011",
        )
        for app, reason in REQUIRED_APPS.items()
        if not apps.is_installed(app)
    ]


@tryon_check()
def check_sessions(app_configs, **kwargs):
    """E013: guests' try-ons belong to their session, so sessions must be on."""
    middleware = "django.contrib.sessions.middleware.SessionMiddleware"
    if apps.is_installed("django.contrib.sessions") and middleware in settings.MIDDLEWARE:
        return []
    return [
        Error(
            "Sessions are not enabled: a guest's try-ons belong to their session, so the "
            "shopper API would fail for every shopper who is not signed in.",
            hint=f"Add 'django.contrib.sessions' to INSTALLED_APPS and {middleware!r} to "
            "MIDDLEWARE (as startproject does).",
            id="django_tryon.E013",
        )
    ]


@tryon_check(Tags.staticfiles)
def check_staticfiles(app_configs, **kwargs):
    """W011: without staticfiles, the button's script and stylesheet are never served."""
    if apps.is_installed("django.contrib.staticfiles"):
        return []
    return [
        Warning(
            "'django.contrib.staticfiles' is not in INSTALLED_APPS: the try-on button's "
            "script and stylesheet (django_tryon/static/) are neither served by runserver "
            "nor collected by collectstatic.",
            hint="Add 'django.contrib.staticfiles' to INSTALLED_APPS, unless the shop "
            "uses only the shopper API with a front end of its own.",
            id="django_tryon.W011",
        )
    ]


@tryon_check(Tags.urls)
def check_urls_included(app_configs, **kwargs):
    """W014: the app's URLs are in the URLconf, or the button and the shopper API have
    no address (the button's page failed with a bare NoReverseMatch)."""
    try:
        reverse("django_tryon:job-list")
    except NoReverseMatch:
        return [
            Warning(
                "django_tryon.urls is not included in the URLconf: the shopper API has no "
                "address, and a page with the try-on button cannot be rendered.",
                hint='Add path("tryon/", include("django_tryon.urls")) to the project\'s '
                "urls.py, unless the shop makes only catalogue pictures in the admin.",
                id="django_tryon.W014",
            )
        ]
    return []


@tryon_check()
def check_lease(app_configs, **kwargs):
    """E012: a lease long enough for the worker to start calls at all.

    The worker starts a provider call only while the lease would outlast it
    (:func:`lease_needed`); with a shorter lease it claims jobs, starts
    nothing, and gives them back, pass after pass.
    """
    lease, needed = tryon_settings.LEASE_SECONDS, lease_needed()
    if needed is None or not _is_number(lease) or lease > needed:
        return []  # E006 reports a value that is not a number
    return [
        Error(
            f"TRYON['LEASE_SECONDS'] is {lease!r}: the worker would start no provider call. "
            "It starts one only while the lease outlasts the call's time budget, "
            f"{needed:g} s here (the provider's call and the result's download at their "
            "timeouts, + 5).",
            hint=f"Set LEASE_SECONDS well above {needed:g} (the default is "
            f"{DEFAULTS['LEASE_SECONDS']!r}), or lower CONNECT_TIMEOUT and READ_TIMEOUT.",
            id="django_tryon.E012",
        )
    ]


def lease_needed():
    """Seconds a lease must exceed for the worker to start a call (see ``Worker.call_budget``):
    the provider's call at the backend's timeouts (a synchronous provider waits at
    least its ``min_read_timeout``), the result's download, and five seconds to
    record the answer."""
    connect, read = tryon_settings.CONNECT_TIMEOUT, tryon_settings.READ_TIMEOUT
    if not (_is_number(connect) and _is_number(read)):
        return None
    # The primary's and each fallback's: a job may go to any of them. One that cannot
    # be imported is left out (E003, E050 say why).
    provider_read = max(
        [read] + [float(getattr(cls, "min_read_timeout", 0) or 0) for cls in configured_classes()]
    )
    return (connect + provider_read) + (connect + read) + 5


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@tryon_check()
def check_celery(app_configs, **kwargs):
    if not tryon_settings.CELERY_ENABLED or importlib.util.find_spec("celery") is not None:
        return []
    return [
        Error(
            "TRYON['CELERY_ENABLED'] is True but Celery is not installed.",
            hint='Install it with: pip install "django-tryon[celery]", '
            "or set TRYON['CELERY_ENABLED'] to False and run manage.py tryon_poll.",
            id="django_tryon.E010",
        )
    ]


@tryon_check()
def check_backend(app_configs, **kwargs):
    """E003, E001, E021, E020: the backend imports, has the API key and the libraries it
    needs, and its options are its own."""
    try:
        backend_class = tryon_settings.import_path("BACKEND")
    except ImproperlyConfigured as err:
        return [
            Error(
                str(err),
                hint=f"Set TRYON['BACKEND'] to a dotted path such as {DEFAULTS['BACKEND']!r}.",
                id="django_tryon.E003",
            )
        ]
    errors = []
    if getattr(backend_class, "requires_api_key", False) and not api_key():
        errors.append(
            Error(
                f"The try-on backend {tryon_settings.BACKEND!r} needs an API key.",
                hint="Set TRYON['API_KEY'], for example from an environment variable.",
                id="django_tryon.E001",
            )
        )
    dependency_problem = getattr(backend_class, "dependency_problem", None)
    problem = dependency_problem() if dependency_problem is not None else ""
    if problem:
        errors.append(
            Error(
                problem,
                hint="Install the extra the message names, or choose another TRYON['BACKEND'].",
                id="django_tryon.E021",
            )
        )
    option_problems = getattr(backend_class, "option_problems", None)
    if option_problems is not None:
        known = sorted(getattr(backend_class, "known_options", {}))
        errors += [
            Error(
                problem,
                hint=f"{backend_class.__name__}'s options: {', '.join(known) or 'none'}; "
                "see docs/providers.md.",
                id="django_tryon.E020",
            )
            for problem in option_problems(tryon_settings.OPTIONS)
        ]
    return errors


@tryon_check(Tags.security)
def check_base_url(app_configs, **kwargs):
    """E004, W001: the provider's address is http(s), and https off loopback."""
    return base_url_messages(tryon_settings.BASE_URL, "TRYON['BASE_URL']")


def base_url_messages(url, name):
    """E004, W001 for the provider address ``url``, the setting ``name`` (``None``: the
    backend's own address, nothing to say)."""
    if url is None:
        return []
    parts = urlsplit(url) if isinstance(url, str) else None
    if not parts or parts.scheme not in ("http", "https") or not parts.hostname:
        return [
            Error(
                f"{name} is {url!r}, which is not an http(s) URL.",
                hint="Set it to the provider's address (such as the sandbox's, "
                "'http://127.0.0.1:8765'), or remove it to use the backend's own.",
                id="django_tryon.E004",
            )
        ]
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        return [
            Warning(
                f"{name} ({url}) is plain http: the API key and "
                "shoppers' photos would cross the network unencrypted.",
                hint="Use https, except for a sandbox on loopback.",
                id="django_tryon.W001",
            )
        ]
    return []


@tryon_check()
def check_fallback_backends(app_configs, **kwargs):
    """E050 to E053: each of ``FALLBACK_BACKENDS`` is a backend that can be built, with
    its key and valid options, and no two providers of the chain share a name (a
    job names the provider that holds it by that name)."""
    entries = tryon_settings.FALLBACK_BACKENDS
    if not entries:
        return []
    if not isinstance(entries, (list, tuple)):
        return [
            _fallback_shape_error(
                f"TRYON['FALLBACK_BACKENDS'] is {entries!r}; it must be a list of dicts.",
                "For example [{'BACKEND': 'django_tryon.backends.fashn.FashnBackend', "
                "'API_KEY': os.environ['FASHN_API_KEY']}]; see docs/providers.md.",
            )
        ]
    errors = []
    try:
        names = [tryon_settings.import_path("BACKEND").provider_name]
    except ImproperlyConfigured:
        names = []  # E003 says why
    for position, entry in enumerate(entries, start=1):
        errors += _fallback_messages(entry, position, names)
    return errors


def _fallback_shape_error(message, hint):
    """E050: ``FALLBACK_BACKENDS`` or one of its entries is not of the documented shape."""
    return Error(message, hint=hint, id="django_tryon.E050")


def _fallback_messages(entry, position, names):
    """The problems of one entry of ``FALLBACK_BACKENDS``; its provider joins ``names``."""
    name = f"TRYON['FALLBACK_BACKENDS'][{position - 1}]"
    try:
        backend_class = fallback_class(entry, position)
    except ImproperlyConfigured as err:
        return [
            _fallback_shape_error(
                str(err),
                "Each entry is {'BACKEND': <dotted path>, 'API_KEY': ..., "
                "'BASE_URL': ... (optional), 'OPTIONS': {...} (optional)}.",
            )
        ]
    errors = [
        _fallback_shape_error(
            f"{name} has the key {key!r}, which a fallback does not take.",
            f"Its keys: {', '.join(FALLBACK_KEYS)}.",
        )
        for key in sorted(set(entry) - set(FALLBACK_KEYS), key=str)
    ]
    if getattr(backend_class, "requires_api_key", False) and not entry.get("API_KEY"):
        errors.append(
            Error(
                f"{name} ({entry['BACKEND']}) needs an API key.",
                hint=f"Set {name}['API_KEY'] to that provider's own key: a fallback never "
                "uses TRYON['API_KEY'].",
                id="django_tryon.E051",
            )
        )
    option_problems = getattr(backend_class, "option_problems", None)
    if option_problems is not None:
        known = sorted(getattr(backend_class, "known_options", {}))
        options_name = f"{name}['OPTIONS']"
        errors += [
            Error(
                problem.replace("TRYON['OPTIONS']", options_name),
                hint=f"{backend_class.__name__}'s options: {', '.join(known) or 'none'}; "
                "see docs/providers.md.",
                id="django_tryon.E052",
            )
            for problem in option_problems(entry.get("OPTIONS") or {})
        ]
    provider = getattr(backend_class, "provider_name", "")
    if provider in names:
        errors.append(
            Error(
                f"{name} is a second {provider!r} backend: each provider may appear once "
                "in TRYON['BACKEND'] and TRYON['FALLBACK_BACKENDS'].",
                hint="A job records the name of the provider that holds its task, and is "
                "asked for there: two accounts of one provider cannot be told apart. "
                "Remove one of them.",
                id="django_tryon.E053",
            )
        )
    names.append(provider)
    return errors + base_url_messages(entry.get("BASE_URL"), f"{name}['BASE_URL']")


@tryon_check(Tags.files)
def check_storages(app_configs, **kwargs):
    """E002: the storage aliases exist in ``STORAGES``."""
    configured = getattr(settings, "STORAGES", {}) or {}
    errors = []
    for key in ("UPLOAD_STORAGE", "RESULT_STORAGE"):
        alias = getattr(tryon_settings, key)
        if alias not in configured:
            errors.append(
                Error(
                    f"TRYON[{key!r}] is {alias!r}, which is not an alias in STORAGES.",
                    hint=f"Use one of: {', '.join(sorted(configured)) or '(none)'}, "
                    "or add it to STORAGES.",
                    id="django_tryon.E002",
                )
            )
    return errors


@tryon_check()
def check_numbers(app_configs, **kwargs):
    """E006, E007: numbers are numbers in range; ``RESULT_HOSTS`` is a list of names."""
    errors = []
    for key in POSITIVE_NUMBERS + NON_NEGATIVE_NUMBERS:
        value = getattr(tryon_settings, key)
        lowest_ok = 0 if key in NON_NEGATIVE_NUMBERS else 1e-9
        if not _is_number(value) or value < lowest_ok:
            wanted = "a number >= 0" if key in NON_NEGATIVE_NUMBERS else "a number > 0"
            errors.append(
                Error(
                    f"TRYON[{key!r}] is {value!r}; it must be {wanted}.",
                    hint=f"The default is {DEFAULTS[key]!r}.",
                    id="django_tryon.E006",
                )
            )
    hosts = tryon_settings.RESULT_HOSTS
    if isinstance(hosts, str) or not all(isinstance(h, str) for h in hosts):
        errors.append(
            Error(
                "TRYON['RESULT_HOSTS'] must be a list of host names.",
                hint="For example ['results.example.com'].",
                id="django_tryon.E007",
            )
        )
    return errors


@tryon_check()
def check_api_key(app_configs, **kwargs):
    """E041: a key that would be refused as a header value, named by its fault, never shown.

    Whitespace around the key is stripped before use (see redaction.api_key);
    what is left must be visible ASCII characters, as every provider's keys are.
    """
    key = api_key()
    if key is None:
        return []  # no key at all: E001 says so, for backends that need one
    if not isinstance(key, str):
        problem = f"TRYON['API_KEY'] is a {type(key).__name__}, not a string."
    else:
        faults = [(place, char) for place, char in enumerate(key) if not "!" <= char <= "~"]
        if not faults:
            return []
        position, character = faults[0]
        problem = (
            f"TRYON['API_KEY'] holds {_character_kind(character)} at character {position + 1} "
            f"of {len(key)} (after the whitespace around it is stripped): it cannot be sent "
            "in an HTTP header."
        )
    return [
        Error(
            problem,
            hint="Set it to the key alone, as text: copy it again from the provider's "
            "dashboard, and check the file or secret it is read from holds nothing else.",
            id="django_tryon.E041",
        )
    ]


def _character_kind(character):
    if character == " ":
        return "a space"
    if character in "\r\n":
        return "a line break"
    if ord(character) < 32 or ord(character) == 127:
        return "a control character"
    return "a non-ASCII character"


@tryon_check()
def check_sqlite_transaction_mode(app_configs, **kwargs):
    """W040: SQLite set up to wait for its write lock (see sqlite_mode_warnings)."""
    return sqlite_mode_warnings(settings.DATABASES)


def sqlite_mode_warnings(databases):
    """SQLite without ``transaction_mode: "IMMEDIATE"`` answers concurrent writes with
    "database is locked" errors (HTTP 500) instead of waiting its turn, for every
    transaction that reads before it writes (the worker's, the admin's)."""
    warnings = []
    for alias, config in databases.items():
        if not str(config.get("ENGINE", "")).endswith("sqlite3"):
            continue
        name = str(config.get("NAME", ""))
        if name == ":memory:" or "mode=memory" in name:
            continue  # in memory: no other process writes beside this one
        mode = str((config.get("OPTIONS") or {}).get("transaction_mode") or "DEFERRED")
        if mode.upper() in ("IMMEDIATE", "EXCLUSIVE"):
            continue
        warnings.append(
            Warning(
                f"The SQLite database {alias!r} begins transactions in {mode.upper()} mode: "
                "a transaction that reads before it writes fails with "
                "'database is locked' when the worker or another request writes at "
                "the same time.",
                hint=f'Add "transaction_mode": "IMMEDIATE" to DATABASES[{alias!r}]["OPTIONS"] '
                '(Django 5.1 or later), with a lock "timeout" of some seconds.',
                id="django_tryon.W040",
            )
        )
    return warnings


#: Django's session engine that keeps the session in the cookie itself.
SIGNED_COOKIE_SESSIONS = "django.contrib.sessions.backends.signed_cookies"


@tryon_check(Tags.security)
def check_session_engine(app_configs, **kwargs):
    """W042: guests' sessions kept where a planted cookie can be revoked.

    A guest's try-ons belong to the guest their session names, and the session
    gets a new key when they start one, so a cookie planted in their browser
    beforehand stops working (docs/security.md). A signed cookie session cannot
    be revoked: a copy kept by whoever planted it names the same guest.
    """
    if getattr(settings, "SESSION_ENGINE", "") != SIGNED_COOKIE_SESSIONS:
        return []
    return [
        Warning(
            "Sessions are kept in signed cookies, which cannot be revoked: a session "
            "cookie planted in a guest's browser (from a sibling domain, say) keeps "
            "reading the try-ons, photos and pictures the guest starts with it.",
            hint='Keep sessions on the server: SESSION_ENGINE "django.contrib.sessions.'
            'backends.db", "cache" or "cached_db".',
            id="django_tryon.W042",
        )
    ]


@tryon_check(Tags.security, Tags.urls)
def check_webhooks(app_configs, **kwargs):
    """E030, E031, W030, W031: ``WEBHOOK_BASE_URL`` is the shop's public origin, the
    webhook URL of each backend that can push (primary or fallback) can be made,
    and one of them can."""
    base = tryon_settings.WEBHOOK_BASE_URL
    if not base:
        return []
    parts = urlsplit(base) if isinstance(base, str) else None
    try:
        port_ok = parts is not None and (parts.port or 0) >= 0
    except ValueError:
        port_ok = False
    if (
        not parts
        or not port_ok
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
    ):
        return [
            Error(
                f"TRYON['WEBHOOK_BASE_URL'] is {base!r}, which is not an origin "
                "(scheme, host and port only).",
                hint="Set it to the address the provider reaches the shop at, such as "
                "'https://shop.example.com'; the path comes from where django_tryon.urls "
                "is included.",
                id="django_tryon.E030",
            )
        ]
    errors: list[CheckMessage] = []
    classes = configured_classes()  # the primary and its fallbacks (FALLBACK_BACKENDS)
    if not classes:
        return []  # E003 says why
    pushing = [cls for cls in classes if getattr(cls, "supports_callbacks", False)]
    if not pushing:
        names = ", ".join(cls.__name__ for cls in classes)
        errors.append(
            Warning(
                f"TRYON['WEBHOOK_BASE_URL'] is set, but {names} cannot call "
                "the shop back: its jobs are polled, the setting is not used.",
                hint="Remove WEBHOOK_BASE_URL, or use a backend that pushes (see "
                "docs/providers.md).",
                id="django_tryon.W031",
            )
        )
    from .callbacks import url_name

    for backend_class in pushing:
        provider = getattr(backend_class, "provider_name", "")
        try:
            reverse(url_name(provider), kwargs={"job_id": "x", "secret": "x"})
        except NoReverseMatch:
            errors.append(
                Error(
                    f"The webhook URL for {provider} cannot be made: django_tryon.urls "
                    "is not included in the URLconf, or has no view for this provider.",
                    hint='Add path("tryon/", include("django_tryon.urls")) to the '
                    "project's urls.py.",
                    id="django_tryon.E031",
                )
            )
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        errors.append(
            Warning(
                f"TRYON['WEBHOOK_BASE_URL'] ({base}) is plain http: each webhook's secret "
                "would cross the network unencrypted, and anyone on the way could end "
                "jobs with it.",
                hint="Use https, except for a sandbox on loopback.",
                id="django_tryon.W030",
            )
        )
    return errors
