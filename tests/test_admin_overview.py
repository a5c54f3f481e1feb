"""The status overview page of the job admin, and the model photo list."""

import re
from datetime import timedelta

import pytest
import responses
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from django_tryon.models import JobStatus, ModelPhoto, TryOnJob
from tests.support import contract

OVERVIEW = "admin:django_tryon_tryonjob_overview"
CREDITS_URL = "https://api.tryon.test" + contract.CREDITS_PATH


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def timed_jobs(garment):
    now = timezone.now()
    for seconds in (10, 20, 30, 100):
        created = now - timedelta(hours=1)
        TryOnJob.objects.create(
            garment=garment,
            status=JobStatus.SUCCEEDED,
            created_at=created,
            submitted_at=created,
            finished_at=created + timedelta(seconds=seconds),
        )
    TryOnJob.objects.create(
        garment=garment,
        status=JobStatus.FAILED,
        created_at=now - timedelta(hours=2),
        error_code="no_face",
        provider_error_code="ERROR_NO_FACE_IN_FILE",
    )
    TryOnJob.objects.create(
        garment=garment,
        status=JobStatus.PENDING,
        next_attempt_at=now - timedelta(minutes=5),
    )


def cells(response, row_label):
    """The cells of the row whose header is ``row_label``, as text."""
    page = response.content.decode()
    match = re.search(
        rf"<tr><th scope=\"row\">(?:<a [^>]*>)?{re.escape(row_label)}(?:</a>)?</th>(.*?)</tr>",
        page,
        flags=re.S,
    )
    assert match, f"no row {row_label!r}"
    return [
        re.sub(r"<[^>]+>", "", cell).strip()
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", match.group(1), flags=re.S)
    ]


@responses.activate
def test_the_overview_shows_the_figures(admin_client, timed_jobs):
    responses.get(CREDITS_URL, json={**contract.public_fields(), "data": {"credits": 4321}})
    response = admin_client.get(reverse(OVERVIEW))
    assert response.status_code == 200
    assert cells(response, "Succeeded") == ["4", "4"]
    assert cells(response, "Failed") == ["1", "1"]
    assert cells(response, "All") == ["6", "6"]
    assert cells(response, "Success rate") == ["80.0 %", "80.0 %"]
    assert cells(response, "Median time to result (p50)") == ["25.0 s", "25.0 s"]
    assert cells(response, "p95 time to result") == ["1 min 30 s", "1 min 30 s"]
    assert cells(response, "Overdue by more than a minute") == ["1"]
    page = response.content.decode()
    assert "ERROR_NO_FACE_IN_FILE" in page
    assert "no_face" in page
    assert "4321 credits left." in page
    assert "tryon-credits-low" not in page


def test_the_job_list_links_to_the_overview(admin_client, db):
    page = admin_client.get(reverse("admin:django_tryon_tryonjob_changelist")).content.decode()
    assert reverse(OVERVIEW) in page


@responses.activate
def test_low_credits_are_warned_about(admin_client, settings, db):
    settings.TRYON = {**settings.TRYON, "CREDITS_WARNING_THRESHOLD": 500}
    responses.get(CREDITS_URL, json={**contract.public_fields(), "data": {"credits": 42}})
    page = admin_client.get(reverse(OVERVIEW)).content.decode()
    assert "tryon-credits-low" in page
    assert "Only 42 credits left (warning below 500)" in page


@responses.activate
def test_a_failing_credits_query_still_shows_the_page(admin_client, db):
    responses.get(CREDITS_URL, status=500, json=contract.error_answer(500, "PROCESSING_FAILURE"))
    response = admin_client.get(reverse(OVERVIEW))
    assert response.status_code == 200
    page = response.content.decode()
    assert "The provider did not tell the remaining credits:" in page
    assert "credits left" not in page
    # Asked once; "Ask again" asks at once.
    admin_client.get(reverse(OVERVIEW))
    assert len(responses.calls) == 1
    responses.replace(
        responses.GET, CREDITS_URL, json={**contract.public_fields(), "data": {"credits": 7000}}
    )
    # A GET, whatever it asks, is answered from the minute's cache: a link any page
    # could make staff follow calls no provider.
    assert "7000" not in admin_client.get(reverse(OVERVIEW), {"refresh": "credits"}).text
    assert len(responses.calls) == 1
    again = admin_client.post(reverse(OVERVIEW), {"refresh": "credits"}, follow=True)
    assert again.redirect_chain == [(reverse(OVERVIEW), 302)]
    assert "7000 credits left." in again.content.decode()
    assert len(responses.calls) == 2


@responses.activate
def test_asking_for_credits_again_needs_the_admins_csrf_token(admin_user, db):
    responses.get(CREDITS_URL, json={**contract.public_fields(), "data": {"credits": 5}})
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    page = client.get(reverse(OVERVIEW))
    assert len(responses.calls) == 1
    # A form on another site posts without the token: refused, nothing asked.
    assert client.post(reverse(OVERVIEW), {"refresh": "credits"}).status_code == 403
    assert len(responses.calls) == 1
    token = page.context["csrf_token"]
    answer = client.post(reverse(OVERVIEW), {"refresh": "credits", "csrfmiddlewaretoken": token})
    assert answer.status_code == 302
    assert len(responses.calls) == 2


@responses.activate
def test_the_overview_needs_the_view_permission(client, django_user_model, db):
    responses.get(CREDITS_URL, json={**contract.public_fields(), "data": {"credits": 1}})
    user = django_user_model.objects.create_user("staff", is_staff=True)
    client.force_login(user)
    assert client.get(reverse(OVERVIEW)).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_tryonjob"))
    assert client.get(reverse(OVERVIEW)).status_code == 200


def test_the_overview_asks_anonymous_visitors_to_log_in(client, db):
    response = client.get(reverse(OVERVIEW))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_the_model_photo_list_renders(admin_client, db):
    ModelPhoto.objects.create(name="Dana", image="tryon/models/dana.jpg")
    page = admin_client.get(reverse("admin:django_tryon_modelphoto_changelist"))
    assert page.status_code == 200
    assert "Dana" in page.content.decode()
    assert "/media/tryon/models/dana.jpg" in page.content.decode()
