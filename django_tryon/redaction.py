"""Keeping the provider's API key out of every text the app writes.

An error text can quote what was sent: an HTTP library quotes a header value
it refuses, a provider may echo the request back. Every error text that can
reach a log, the admin or a job passes through :func:`redact`, and the
package's loggers (:func:`get_logger`) pass every record through it too.

The key is also read through :func:`api_key`, which strips the whitespace
and line breaks around it that a key read from a file or a secret mount often
carries (the key itself never has any).
"""

import logging

from django.conf import settings

REDACTED = "[redacted]"
#: Shorter values are not looked for: redacting a two-letter test key would
#: garble every text that happens to hold those letters.
MIN_SECRET_LENGTH = 6


def api_key(value=None):
    """``TRYON['API_KEY']`` (or ``value``) as it is sent: without surrounding whitespace."""
    if value is None:
        value = _tryon_dict().get("API_KEY", "")
    return value.strip() if isinstance(value, str) else value


def configured_secrets():
    """Every secret of the ``TRYON`` setting, in each form a text may quote it:
    as set, stripped, and escaped as ``repr()`` writes it. Longest first."""
    tryon = _tryon_dict()
    values = [tryon.get("API_KEY")]
    fallbacks = tryon.get("FALLBACK_BACKENDS")
    if isinstance(fallbacks, (list, tuple)):
        values += [entry.get("API_KEY") for entry in fallbacks if isinstance(entry, dict)]
    forms = set()
    for value in values:
        if not isinstance(value, str):
            continue
        for form in (value, value.strip()):
            forms.add(form)
            forms.add(repr(form)[1:-1])  # "key\n" quoted as 'key\\n'
    return sorted(
        (form for form in forms if len(form.strip()) >= MIN_SECRET_LENGTH), key=len, reverse=True
    )


def redact(text):
    """``text`` (any object, as ``str()``) with every configured secret replaced by
    ``[redacted]``."""
    text = str(text)
    for secret in configured_secrets():
        text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """Redacts a record's message, arguments merged, and its traceback text."""

    def filter(self, record):
        try:
            if not configured_secrets():
                return True
            record.msg = redact(record.getMessage())
            record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redact(record.exc_text)
        except Exception:  # a log line must never fail for this
            return True
        return True


_FILTER = RedactingFilter()


def get_logger(name):
    """``logging.getLogger(name)`` with :class:`RedactingFilter` attached.

    A logger's filters see only the records logged to it, not those of its
    children: each of the package's loggers is made here.
    """
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


def _tryon_dict():
    try:
        value = getattr(settings, "TRYON", None) or {}
    except Exception:  # settings not configured yet: nothing to hide
        return {}
    return value if isinstance(value, dict) else {}
