"""The status overview's charts: inline SVG whose numbers are the data's, one query each."""

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
import responses
from django.core.cache import cache
from django.urls import reverse

from django_tryon.admin import charts
from django_tryon.models import JobStatus, TryOnJob
from tests.support import contract

SVG = "{http://www.w3.org/2000/svg}"
NOW = datetime(2026, 12, 1, 15, 40, tzinfo=dt_timezone.utc)
CREDITS_URL = "https://api.tryon.test" + contract.CREDITS_PATH


def at(hours_ago, minute=10):
    """A time ``hours_ago`` hours before NOW's hour, ``minute`` minutes past."""
    return NOW.replace(minute=minute) - timedelta(hours=hours_ago)


def make(garment, status, created, **fields):
    return TryOnJob.objects.create(garment=garment, status=status, created_at=created, **fields)


@pytest.fixture
def week_of_jobs(garment):
    for _ in range(3):
        make(garment, JobStatus.SUCCEEDED, at(2))
    make(garment, JobStatus.FAILED, at(2, minute=59))
    make(garment, JobStatus.FAILED, at(30))
    make(garment, JobStatus.PENDING, at(0))
    make(garment, JobStatus.CANCELED, at(167))  # the first hour of the window
    make(garment, JobStatus.SUCCEEDED, at(168))  # one hour too old
    make(garment, JobStatus.SUCCEEDED, at(600))


def parse(svg):
    return ET.fromstring(str(svg))


def bars(root):
    return root.iter(f"{SVG}rect")


def test_jobs_per_hour_and_status_in_one_query(week_of_jobs, django_assert_num_queries):
    with django_assert_num_queries(1):
        data = charts.status_hours(NOW)
    assert len(data.hours) == 168
    assert data.hours[-1] == NOW.replace(minute=0)
    assert data.hours[0] == NOW.replace(minute=0) - timedelta(hours=167)
    found = {
        (data.hours[i], status): count
        for status, row in data.counts.items()
        for i, count in enumerate(row)
        if count
    }
    hour = NOW.replace(minute=0)
    assert found == {
        (hour - timedelta(hours=2), "succeeded"): 3,
        (hour - timedelta(hours=2), "failed"): 1,
        (hour - timedelta(hours=30), "failed"): 1,
        (hour, "pending"): 1,
        (hour - timedelta(hours=167), "canceled"): 1,
    }


def test_the_jobs_chart_draws_the_datas_numbers(week_of_jobs):
    svg = charts.jobs_chart(charts.status_hours(NOW))
    drawn = {
        (rect.get("data-hour"), rect.get("data-status")): int(rect.get("data-count"))
        for rect in bars(parse(svg))
    }
    two_hours_ago = (NOW.replace(minute=0) - timedelta(hours=2)).isoformat()
    assert drawn[(two_hours_ago, "succeeded")] == 3
    assert drawn[(two_hours_ago, "failed")] == 1
    assert sum(drawn.values()) == 7  # the two jobs out of the window are not drawn
    root = parse(svg)
    # Each row is labelled with its status and total: no colour is needed to read it.
    rows = {g.get("data-status"): g for g in root.iter(f"{SVG}g")}
    assert list(rows) == JobStatus.values
    assert rows["succeeded"].find(f"{SVG}text").text == "Succeeded (3)"
    assert rows["expired"].find(f"{SVG}text").text == "Expired (0)"
    # The tallest bar fills its row; the others are in proportion.
    heights = {
        (rect.get("data-hour"), rect.get("data-status")): float(rect.get("height"))
        for rect in bars(root)
    }
    assert heights[(two_hours_ago, "succeeded")] == charts.ROW_HEIGHT
    assert heights[(two_hours_ago, "failed")] == pytest.approx(charts.ROW_HEIGHT / 3, abs=0.01)


def test_the_jobs_chart_has_a_title_a_description_and_a_title_per_bar(week_of_jobs):
    root = parse(charts.jobs_chart(charts.status_hours(NOW)))
    assert root.get("role") == "img"
    labelled_by = root.get("aria-labelledby").split()
    assert [root.find(f"{SVG}title").get("id"), root.find(f"{SVG}desc").get("id")] == labelled_by
    assert root.find(f"{SVG}title").text == (
        "Jobs created per hour, by status, over the last 7 days"
    )
    desc = root.find(f"{SVG}desc").text
    assert desc.startswith("7 jobs from Tue 24 Nov, 16:00 to Tue 1 Dec, 16:00 (")
    assert "Pending: 1, Succeeded: 3, Failed: 2, Canceled: 1" in desc
    assert "The busiest hour, Tue 1 Dec, 13:00, had 4." in desc
    titles = [rect.find(f"{SVG}title").text for rect in bars(root)]
    assert "Tue 1 Dec, 13:00: 3 Succeeded" in titles
    assert "Mon 30 Nov, 09:00: 1 Failed" in titles


def test_an_empty_week_is_said_in_words(db):
    root = parse(charts.jobs_chart(charts.status_hours(NOW)))
    assert root.find(f"{SVG}desc").text == "No job was created in the last 7 days."
    assert list(root.iter(f"{SVG}rect")) == []
    durations = parse(charts.durations_chart(charts.duration_hours(NOW)))
    assert durations.find(f"{SVG}desc").text == "No result was stored in the last 7 days."


@pytest.fixture
def results(garment):
    for hours_ago, seconds in ((1, 4), (1, 8), (5, 30), (200, 99)):
        finished = at(hours_ago)
        make(
            garment,
            JobStatus.SUCCEEDED,
            finished - timedelta(seconds=seconds + 1),
            submitted_at=finished - timedelta(seconds=seconds),
            finished_at=finished,
        )
    # Not results: failed, and never submitted.
    make(garment, JobStatus.FAILED, at(1), submitted_at=at(1), finished_at=at(1, 20))
    make(garment, JobStatus.SUCCEEDED, at(1), finished_at=at(1, 20))


def test_time_to_result_per_hour_in_one_query(results, django_assert_num_queries):
    with django_assert_num_queries(1):
        data = charts.duration_hours(NOW)
    by_hour = {data.hours[i]: value for i, value in enumerate(data.values) if value}
    hour = NOW.replace(minute=0)
    assert by_hour == {
        hour - timedelta(hours=1): charts.ResultHour(2, timedelta(seconds=6), timedelta(seconds=8)),
        hour - timedelta(hours=5): charts.ResultHour(
            1, timedelta(seconds=30), timedelta(seconds=30)
        ),
    }
    assert data.results == 3
    assert data.average == timedelta(seconds=14)
    assert data.longest == timedelta(seconds=30)


def test_the_durations_chart_draws_the_datas_numbers(results):
    root = parse(charts.durations_chart(charts.duration_hours(NOW)))
    drawn = {
        rect.get("data-hour"): (
            int(rect.get("data-results")),
            float(rect.get("data-average-seconds")),
            float(rect.get("data-longest-seconds")),
            rect.find(f"{SVG}title").text,
        )
        for rect in root.iter(f"{SVG}rect")
    }
    hour = NOW.replace(minute=0)
    assert drawn == {
        (hour - timedelta(hours=1)).isoformat(): (
            2,
            6.0,
            8.0,
            "Tue 1 Dec, 14:00: 2 results, average 6.0 s, longest 8.0 s",
        ),
        (hour - timedelta(hours=5)).isoformat(): (
            1,
            30.0,
            30.0,
            "Tue 1 Dec, 10:00: 1 result, average 30.0 s, longest 30.0 s",
        ),
    }
    assert root.find(f"{SVG}desc").text == (
        "3 results stored in the last 7 days, 14.0 s on average from submission to stored "
        "picture; the longest took 30.0 s. Each bar is one hour's average."
    )


def test_the_overview_page_shows_both_charts(admin_client, results):
    cache.clear()
    with responses.RequestsMock() as mock:
        mock.get(CREDITS_URL, json={"error_code": 0, "data": {"remaining_credits": 500}})
        page = admin_client.get(reverse("admin:django_tryon_tryonjob_overview")).content.decode()
    cache.clear()
    block = page.split('id="tryon-charts"')[1].split("</div>")[0]
    assert len(re.findall(r"<svg ", block)) == 2
    assert 'id="tryon-chart-jobs"' in block and 'id="tryon-chart-durations"' in block
