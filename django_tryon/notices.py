"""Telling the site's ``ADMINS`` of something staff must act on, at most once a day.

Several things mail the admins (the guests' daily cap reached, a provider
down): each names its notice, and a notice is mailed the first time it is
given on a (local) day and not again until the next. The day's notice is a
row of :class:`~django_tryon.models.DailyUsage` (key ``notice:<name>``),
created by one ``INSERT`` that a unique constraint lets only one process win,
so one worker or many, each notice goes out once a day. Those rows are purged
with the quota counters (:mod:`django_tryon.retention`).
"""

from datetime import datetime

from django.conf import settings
from django.core.mail import get_connection, mail_admins
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import DailyUsage

#: Django's SMTP backend waits for ever on a mail server that accepts and never
#: answers unless the project sets ``EMAIL_TIMEOUT``. A notice is given on a
#: shopper's request or in the worker's pass: without one, this bounds each wait.
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
MAIL_TIMEOUT = 10.0

#: The start of every notice's key in the usage table (no quota counter's starts so).
NOTICE_PREFIX = "notice:"


def notice_key(name: str) -> str:
    """The usage table's key of the notice ``name`` (cut to the column's length:
    names are made by our code from settings, never by a visitor)."""
    return (NOTICE_PREFIX + name)[: DailyUsage._meta.get_field("key").max_length]


def mail_admins_once_a_day(name: str, subject: str, message: str, now: datetime | None = None):
    """Mail ``subject`` and ``message`` to ``ADMINS`` unless the notice ``name`` was
    already mailed today; return whether it is now (Django sends nothing when
    ``ADMINS`` is empty, and a mail server that fails is not the caller's fault)."""
    day = timezone.localdate(now or timezone.now())
    try:
        with transaction.atomic():
            DailyUsage.objects.create(key=notice_key(name), day=day, count=1)
    except IntegrityError:
        return False
    mail_admins(subject, message, fail_silently=True, connection=mail_connection())
    return True


def mail_connection():
    """The mail connection of a notice: the project's own, held to
    :data:`MAIL_TIMEOUT` when it is Django's SMTP backend with no ``EMAIL_TIMEOUT``
    (other backends keep their own timeouts and options)."""
    if settings.EMAIL_BACKEND == SMTP_BACKEND and settings.EMAIL_TIMEOUT is None:
        return get_connection(fail_silently=True, timeout=MAIL_TIMEOUT)
    return get_connection(fail_silently=True)
