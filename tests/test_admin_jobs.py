"""The job admin: read-only pages for every status, the actions and their permissions,
search, and a list page whose query count does not grow with the jobs shown."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_tryon.admin import operations
from django_tryon.backends.base import Submission, TryOnBackend
from django_tryon.models import DailyUsage, JobSource, JobStatus, ModelPhoto, TryOnJob
from django_tryon.worker import Worker

CHANGELIST = "admin:django_tryon_tryonjob_changelist"


def change_url(job):
    return reverse("admin:django_tryon_tryonjob_change", args=[job.pk])


def messages_of(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def login_staff(client, django_user_model, *codenames):
    user = django_user_model.objects.create_user("staff", password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


def run_action(client, action, jobs):
    return client.post(
        reverse(CHANGELIST), {"action": action, "_selected_action": [str(j.pk) for j in jobs]}
    )


@pytest.fixture
def job(garment):
    def make(status, **fields):
        now = timezone.now()
        defaults = {
            "garment": garment,
            "status": status,
            "person_image": "tryon/photos/person.jpg",
        }
        if status in (JobStatus.QUEUED, JobStatus.PROCESSING, JobStatus.SUCCEEDED):
            defaults.update(provider_task_id=f"task-{status}", submitted_at=now)
        if status == JobStatus.SUCCEEDED:
            defaults.update(result_image="tryon/results/result.png", finished_at=now)
        if status in (JobStatus.FAILED, JobStatus.EXPIRED):
            defaults.update(
                error_code="provider_unavailable" if status == JobStatus.FAILED else "expired",
                error_message="The try-on service is busy.",
                provider_error_code="AI_SERVICE_ERROR",
                attempts=6,
                polls=3,
                finished_at=now,
            )
        defaults.update(fields)
        return TryOnJob.objects.create(**defaults)

    return make


# Pages ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", JobStatus.values)
def test_list_and_change_pages_render_for_every_status(admin_client, job, status):
    record = job(status)
    listing = admin_client.get(reverse(CHANGELIST))
    assert listing.status_code == 200
    assert f"tryon-status-{status}" in listing.content.decode()
    page = admin_client.get(change_url(record))
    assert page.status_code == 200
    content = page.content.decode()
    assert str(record.pk) in content
    assert f"tryon-status-{status}" in content
    assert 'name="_save"' not in content  # read-only


def test_the_change_page_is_read_only(admin_client, job):
    record = job(JobStatus.FAILED)
    response = admin_client.post(change_url(record), {"status": "succeeded"})
    assert response.status_code == 403
    record.refresh_from_db()
    assert record.status == JobStatus.FAILED


def test_jobs_cannot_be_added_in_the_admin(admin_client, db):
    assert admin_client.get(reverse("admin:django_tryon_tryonjob_add")).status_code == 403


def test_the_list_shows_owner_thumbnails_duration_and_error(admin_client, job, django_user_model):
    shopper = django_user_model.objects.create_user("shopper-anna")
    now = timezone.now()
    job(
        JobStatus.SUCCEEDED,
        user=shopper,
        submitted_at=now - timedelta(seconds=42),
        finished_at=now,
    )
    job(JobStatus.FAILED, session_key="secret-session-key-123")
    job(JobStatus.PENDING, source=JobSource.ADMIN, person_image="", photos_erased_at=now)
    page = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "shopper-anna" in page
    assert "guest " in page and "secret-session-key-123" not in page
    assert "catalogue" in page
    assert "42.0 s" in page
    assert "provider_unavailable<br>AI_SERVICE_ERROR</span>" in page
    assert "/media/tryon/results/result.png" in page
    assert "erased" in page


def test_the_list_filters_by_status_source_garment_and_date(admin_client, job, garment):
    failed = job(JobStatus.FAILED)
    job(JobStatus.SUCCEEDED, source=JobSource.ADMIN)
    old = job(JobStatus.FAILED)
    TryOnJob.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30))

    def shown(**params):
        response = admin_client.get(reverse(CHANGELIST), params)
        assert response.status_code == 200
        return {j.pk for j in response.context["cl"].result_list}

    assert shown(status__exact="failed") == {failed.pk, old.pk}
    assert len(shown(source__exact="admin")) == 1
    assert len(shown(garment__id__exact=garment.pk)) == 3
    since = (timezone.now() - timedelta(days=7)).isoformat()
    assert old.pk not in shown(created_at__gte=since)
    assert shown(error_code__exact="provider_unavailable") == {failed.pk, old.pk}


def test_search_by_job_id_and_provider_task_id(admin_client, job):
    wanted = job(JobStatus.QUEUED, provider_task_id="T-777")
    job(JobStatus.QUEUED, provider_task_id="T-778")

    def found(term):
        response = admin_client.get(reverse(CHANGELIST), {"q": term})
        return [j.pk for j in response.context["cl"].result_list]

    assert found(str(wanted.pk)) == [wanted.pk]
    assert found(str(wanted.pk).upper()) == [wanted.pk]
    assert found("T-777") == [wanted.pk]
    assert found("no-such-task") == []


def test_the_list_query_count_does_not_grow_with_the_jobs(admin_client, garment, django_user_model):
    photo = ModelPhoto.objects.create(name="Model", image="tryon/models/m.jpg")
    users = [django_user_model.objects.create_user(f"shopper{i}") for i in range(5)]
    statuses = JobStatus.values

    def add_jobs(count):
        now = timezone.now()
        TryOnJob.objects.bulk_create(
            TryOnJob(
                garment=garment,
                status=statuses[i % len(statuses)],
                model_photo=photo if i % 2 else None,
                user=users[i % len(users)] if i % 3 else None,
                session_key="" if i % 3 else f"s{i}",
                person_image="tryon/photos/p.jpg",
                result_image="tryon/results/r.png" if i % 7 == 0 else "",
                submitted_at=now - timedelta(seconds=30),
                finished_at=now,
                error_code="provider_error" if i % 5 == 0 else "",
            )
            for i in range(count)
        )

    add_jobs(10)
    with CaptureQueriesContext(connection) as ten:
        response = admin_client.get(reverse(CHANGELIST))
    assert len(response.context["cl"].result_list) == 10
    add_jobs(190)
    with CaptureQueriesContext(connection) as two_hundred:
        response = admin_client.get(reverse(CHANGELIST))
    assert response.context["cl"].result_count == 200
    assert len(response.context["cl"].result_list) == 100  # one page
    assert len(two_hundred) == len(ten), [q["sql"] for q in two_hundred.captured_queries]


# Actions -----------------------------------------------------------------------------------


def test_retry_sends_failed_and_expired_jobs_back_to_the_queue(admin_client, job):
    failed = job(JobStatus.FAILED, lease_owner="old-worker", provider_task_id="T-1")
    expired = job(JobStatus.EXPIRED)
    two_days_ago = timezone.now() - timedelta(days=2)
    TryOnJob.objects.filter(pk=expired.pk).update(created_at=two_days_ago, started_at=two_days_ago)
    succeeded = job(JobStatus.SUCCEEDED)
    response = run_action(admin_client, "retry_jobs", [failed, expired, succeeded])
    assert response.status_code == 302
    assert messages_of(response) == [
        "2 jobs were sent back to the queue.",
        "1 job was not failed or expired and was left as it is.",
    ]
    for record in (failed, expired):
        record.refresh_from_db()
        assert record.status == JobStatus.PENDING
        assert (record.attempts, record.polls) == (0, 0)
        assert record.error_code == record.error_message == record.provider_error_code == ""
        assert record.provider_task_id == "" and record.lease_owner == ""
        assert record.submitted_at is None and record.finished_at is None
        # Counted anew: the worker's expiry must not end it again at once.
        assert timezone.now() - record.started_at < timedelta(minutes=1)
    assert expired.created_at < timezone.now() - timedelta(days=1)  # history stays true
    assert set(TryOnJob.objects.due()) == {failed, expired}
    succeeded.refresh_from_db()
    assert succeeded.status == JobStatus.SUCCEEDED


def test_retry_leaves_jobs_whose_photo_was_erased(admin_client, job):
    erased = job(JobStatus.FAILED, person_image="", photos_erased_at=timezone.now())
    response = run_action(admin_client, "retry_jobs", [erased])
    assert messages_of(response) == [
        "0 jobs were sent back to the queue.",
        "1 job cannot be retried: its photo was erased.",
    ]
    erased.refresh_from_db()
    assert erased.status == JobStatus.FAILED


def test_cancel_ends_pending_and_running_jobs(admin_client, job):
    pending = job(JobStatus.PENDING)
    running = job(
        JobStatus.PROCESSING,
        lease_owner="worker-1",
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )
    done = job(JobStatus.SUCCEEDED)
    response = run_action(admin_client, "cancel_jobs", [pending, running, done])
    assert messages_of(response) == [
        "2 jobs were canceled.",
        "1 job had already ended and was left as it is.",
    ]
    for record in (pending, running):
        record.refresh_from_db()
        assert record.status == JobStatus.CANCELED
        assert record.error_code == "canceled"
        assert record.finished_at is not None
        assert record.lease_owner == "" and record.lease_expires_at is None
    assert not TryOnJob.objects.due().exists()
    done.refresh_from_db()
    assert done.status == JobStatus.SUCCEEDED and done.error_code == ""


def test_cancel_does_not_overwrite_a_job_the_worker_just_finished(job):
    record = job(JobStatus.PROCESSING)
    selected = TryOnJob.objects.filter(pk=record.pk)
    # The worker records the result between the staff's click and the update.
    TryOnJob.objects.filter(pk=record.pk).update(status=JobStatus.SUCCEEDED)
    outcome = operations.cancel_jobs(selected)
    assert (outcome.changed, outcome.wrong_status) == (0, 1)
    record.refresh_from_db()
    assert record.status == JobStatus.SUCCEEDED


def test_poll_now_makes_active_jobs_due(admin_client, job):
    later = timezone.now() + timedelta(minutes=10)
    queued = job(JobStatus.QUEUED, next_attempt_at=later)
    pending = job(JobStatus.PENDING, next_attempt_at=later)
    failed = job(JobStatus.FAILED, next_attempt_at=later)
    assert not TryOnJob.objects.due().exists()
    response = run_action(admin_client, "poll_now", [queued, pending, failed])
    assert messages_of(response) == [
        "2 jobs will be taken by the next worker pass.",
        "1 job had already ended and was left as it is.",
    ]
    assert set(TryOnJob.objects.due()) == {queued, pending}


def test_an_action_that_changes_nothing_warns(admin_client, job):
    done = job(JobStatus.SUCCEEDED)
    response = run_action(admin_client, "cancel_jobs", [done])
    stored = list(get_messages(response.wsgi_request))
    assert [m.level_tag for m in stored] == ["warning", "warning"]
    assert str(stored[0]) == "0 jobs were canceled."


ACTIONS = ["retry_jobs", "cancel_jobs", "poll_now"]


@pytest.mark.parametrize("action", ACTIONS)
def test_staff_with_the_view_permission_only_cannot_run_actions(
    client, django_user_model, job, action
):
    login_staff(client, django_user_model, "view_tryonjob")
    failed = job(JobStatus.FAILED)
    running = job(JobStatus.QUEUED, next_attempt_at=timezone.now() + timedelta(hours=1))
    page = client.get(reverse(CHANGELIST))
    assert page.status_code == 200
    assert f'value="{action}"' not in page.content.decode()
    response = run_action(client, action, [failed, running])
    failed.refresh_from_db()
    running.refresh_from_db()
    assert failed.status == JobStatus.FAILED
    assert running.status == JobStatus.QUEUED
    assert running.next_attempt_at > timezone.now()
    assert not any("job" in message for message in messages_of(response))


@pytest.mark.parametrize("action", ACTIONS)
def test_staff_with_the_change_permission_can_run_actions(client, django_user_model, job, action):
    login_staff(client, django_user_model, "view_tryonjob", "change_tryonjob")
    target = job(
        JobStatus.FAILED if action == "retry_jobs" else JobStatus.QUEUED,
        next_attempt_at=timezone.now() + timedelta(hours=1),
    )
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert f'value="{action}"' in page
    assert 'value="delete_selected"' not in page  # deleting is for superusers
    response = run_action(client, action, [target])
    assert response.status_code == 302
    assert messages_of(response)[0].startswith("1 job ")
    expected = {
        "retry_jobs": JobStatus.PENDING,
        "cancel_jobs": JobStatus.CANCELED,
        "poll_now": JobStatus.QUEUED,
    }[action]
    target.refresh_from_db()
    assert target.status == expected
    if action == "poll_now":
        assert target.next_attempt_at <= timezone.now()


def test_only_superusers_delete_jobs(client, admin_client, django_user_model, job):
    record = job(JobStatus.FAILED)
    login_staff(client, django_user_model, "view_tryonjob", "change_tryonjob", "delete_tryonjob")
    delete_url = reverse("admin:django_tryon_tryonjob_delete", args=[record.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 302
    assert not TryOnJob.objects.exists()


# Celery ------------------------------------------------------------------------------------


@pytest.fixture
def sent(monkeypatch):
    from django_tryon import tasks

    messages = []
    monkeypatch.setattr(tasks, "enqueue", lambda job_id, due=None: messages.append(job_id))
    return messages


@pytest.mark.parametrize("action", ["retry_jobs", "poll_now"])
def test_jobs_made_due_are_handed_to_celery_after_the_commit(
    admin_client, settings, job, sent, action, django_capture_on_commit_callbacks
):
    settings.TRYON = {**settings.TRYON, "CELERY_ENABLED": True}
    target = job(JobStatus.FAILED if action == "retry_jobs" else JobStatus.QUEUED)
    ended = job(JobStatus.SUCCEEDED)
    with django_capture_on_commit_callbacks(execute=True):
        run_action(admin_client, action, [target, ended])
    assert sent == [target.pk]


def test_nothing_is_sent_when_celery_is_off(
    admin_client, job, sent, django_capture_on_commit_callbacks
):
    target = job(JobStatus.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        run_action(admin_client, "retry_jobs", [target])
    target.refresh_from_db()
    assert target.status == JobStatus.PENDING
    assert sent == []


# The buttons of a job's page ---------------------------------------------------------------


def operation_url(job, operation):
    return reverse("admin:django_tryon_tryonjob_operation", args=[job.pk, operation])


@pytest.mark.parametrize(
    ("status", "buttons"),
    [
        (JobStatus.FAILED, ["retry"]),
        (JobStatus.EXPIRED, ["retry"]),
        (JobStatus.QUEUED, ["poll", "cancel"]),
        (JobStatus.PENDING, ["poll", "cancel"]),
        (JobStatus.SUCCEEDED, []),
        (JobStatus.CANCELED, []),
    ],
)
def test_a_jobs_page_offers_the_actions_that_apply(admin_client, job, status, buttons):
    record = job(status)
    page = admin_client.get(change_url(record)).content.decode()
    for operation in ("retry", "poll", "cancel"):
        assert (operation_url(record, operation) in page) == (operation in buttons)


def test_a_button_runs_its_action_and_comes_back(admin_client, job):
    record = job(JobStatus.FAILED)
    response = admin_client.post(operation_url(record, "retry"))
    assert response.status_code == 302
    assert response["Location"] == change_url(record)
    assert messages_of(response) == ["1 job was sent back to the queue."]
    record.refresh_from_db()
    assert record.status == JobStatus.PENDING
    cancel = admin_client.post(operation_url(record, "cancel"))
    assert messages_of(cancel)[-1] == "1 job was canceled."


def test_the_buttons_need_the_change_permission(client, django_user_model, job):
    login_staff(client, django_user_model, "view_tryonjob")
    record = job(JobStatus.FAILED)
    page = client.get(change_url(record)).content.decode()
    assert operation_url(record, "retry") not in page
    assert client.post(operation_url(record, "retry")).status_code == 403
    record.refresh_from_db()
    assert record.status == JobStatus.FAILED


def test_the_button_urls_refuse_what_they_do_not_know(admin_client, job):
    record = job(JobStatus.FAILED)
    assert admin_client.get(operation_url(record, "retry")).status_code == 405
    assert admin_client.post(operation_url(record, "delete")).status_code == 403
    missing = reverse(
        "admin:django_tryon_tryonjob_operation",
        args=["00000000-0000-0000-0000-000000000000", "retry"],
    )
    assert admin_client.post(missing).status_code == 404
    not_a_uuid = reverse("admin:django_tryon_tryonjob_operation", args=["nope", "retry"])
    assert admin_client.post(not_a_uuid).status_code == 404


class SubmittingBackend(TryOnBackend):
    """Takes every task; the worker needs nothing more to move a pending job."""

    provider_name = "test"

    def submit(self, request):
        return Submission(task_id="T-new")


def test_a_retried_old_job_is_submitted_again_not_expired(admin_client, make_job):
    old = make_job(status=JobStatus.EXPIRED, error_code="expired", finished_at=timezone.now())
    long_ago = timezone.now() - timedelta(days=3)
    TryOnJob.objects.filter(pk=old.pk).update(
        created_at=long_ago, started_at=long_ago, submitted_at=long_ago
    )
    run_action(admin_client, "retry_jobs", [old])
    with Worker(backend=SubmittingBackend(), worker_id="test") as worker:
        report = worker.run_pass()
    assert (report.submitted, report.expired) == (1, 0)
    old.refresh_from_db()
    assert old.status == JobStatus.QUEUED
    assert old.provider_task_id == "T-new"


def test_canceling_a_shoppers_job_gives_the_daily_credit_back(admin_client, job):
    today = timezone.localdate()
    DailyUsage.objects.create(key="user:7", day=today, count=2)
    running = job(JobStatus.QUEUED, quota_key="user:7", quota_day=today)
    finished = job(JobStatus.SUCCEEDED, quota_key="user:7", quota_day=today)
    run_action(admin_client, "cancel_jobs", [running, finished])
    assert DailyUsage.objects.get(key="user:7").count == 1
    running.refresh_from_db()
    assert running.quota_key == ""  # refunded once, never again
    run_action(admin_client, "cancel_jobs", [running])
    assert DailyUsage.objects.get(key="user:7").count == 1
