"""Notices to the site's ADMINS: once a day each, one process or many."""

import socket
import threading
from datetime import timedelta

from django.core import mail
from django.utils import timezone

from django_tryon import notices
from django_tryon.models import DailyUsage
from django_tryon.notices import NOTICE_PREFIX, mail_admins_once_a_day, notice_key
from django_tryon.quota import KEY_PREFIXES


def test_a_notice_is_mailed_once_a_day(settings, db):
    settings.ADMINS = [("Staff", "staff@example.com")]
    today = timezone.now()
    assert mail_admins_once_a_day("thing", "A thing", "It happened.", today)
    assert not mail_admins_once_a_day("thing", "A thing", "Again.", today)
    assert mail_admins_once_a_day("other", "Another", "Also.", today)  # its own day's notice
    assert mail_admins_once_a_day("thing", "A thing", "Tomorrow.", today + timedelta(days=1))
    assert [message.body for message in mail.outbox] == ["It happened.", "Also.", "Tomorrow."]


def test_a_notice_key_fits_the_usage_table_and_is_no_quota_counter():
    key = notice_key("provider-down:" + "x" * 200)
    assert len(key) == DailyUsage._meta.get_field("key").max_length
    assert key.startswith(NOTICE_PREFIX)
    assert not any(key.startswith(prefix) for prefix in KEY_PREFIXES.values())


def test_a_mail_server_that_never_answers_holds_a_notice_no_longer_than_its_timeout(
    settings, transactional_db, monkeypatch
):
    """The guests' cap is told on a shopper's request and a provider down in the
    worker's pass: a mail server that accepts and never greets (Django's SMTP backend
    waits for ever without EMAIL_TIMEOUT) must not hold either."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections complete in the kernel; nothing is ever said
    settings.EMAIL_BACKEND = notices.SMTP_BACKEND
    settings.EMAIL_HOST, settings.EMAIL_PORT = silent.getsockname()
    settings.EMAIL_TIMEOUT = None
    settings.ADMINS = [("Staff", "staff@example.com")]
    monkeypatch.setattr(notices, "MAIL_TIMEOUT", 0.5)
    given = []
    notice = threading.Thread(
        target=lambda: given.append(mail_admins_once_a_day("thing", "A thing", "It happened.")),
        daemon=True,  # one left waiting must not hold the test run
    )
    try:
        notice.start()
        notice.join(timeout=30)
        assert not notice.is_alive(), "the notice is still waiting for the mail server"
        # Given once (the mail's failure is not the caller's), not again today.
        assert given == [True]
        assert not mail_admins_once_a_day("thing", "A thing", "Again.")
    finally:
        silent.close()


def test_a_projects_own_mail_timeout_and_backend_are_kept(settings):
    settings.EMAIL_BACKEND = notices.SMTP_BACKEND
    settings.EMAIL_TIMEOUT = 3
    assert notices.mail_connection().timeout == 3
    settings.EMAIL_TIMEOUT = None
    assert notices.mail_connection().timeout == notices.MAIL_TIMEOUT
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert not hasattr(notices.mail_connection(), "timeout")
