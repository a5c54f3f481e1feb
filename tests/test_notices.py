"""Notices to the site's ADMINS: once a day each, one process or many."""

from datetime import timedelta

from django.core import mail
from django.utils import timezone

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
