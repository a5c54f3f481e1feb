"""Publishing catalogue pictures to a shop's gallery through result_published, and taking
them back: only staff pictures, only when a person chooses, one transaction per job."""

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from django_tryon import publishing
from django_tryon.models import JobSource, JobStatus, TryOnJob
from django_tryon.signals import result_published, result_unpublished

CHANGELIST = "admin:django_tryon_tryonjob_changelist"


@pytest.fixture
def picture(garment):
    """A catalogue picture made from the admin, succeeded, not published."""

    def make(**fields):
        values = {
            "garment": garment,
            "status": JobStatus.SUCCEEDED,
            "source": JobSource.ADMIN,
            "person_image": "tryon/photos/model.jpg",
            "result_image": "tryon/results/result.png",
            "provider_task_id": "task-1",
            "finished_at": timezone.now(),
            **fields,
        }
        return TryOnJob.objects.create(**values)

    return make


class Gallery:
    """A shop's gallery: records what the signals brought, and may refuse."""

    def __init__(self):
        self.placed = []
        self.removed = []
        self.refuse_with = None

    def place(self, sender, job, **kwargs):
        if self.refuse_with:
            raise publishing.PublishRefused(self.refuse_with)
        # The job is already recorded as published inside the same transaction.
        assert TryOnJob.objects.get(pk=job.pk).published_at == job.published_at
        self.placed.append(job.pk)
        return True

    def remove(self, sender, job, **kwargs):
        self.removed.append(job.pk)


@pytest.fixture
def gallery():
    shop_gallery = Gallery()
    result_published.connect(shop_gallery.place, sender=TryOnJob, weak=False)
    result_unpublished.connect(shop_gallery.remove, sender=TryOnJob, weak=False)
    yield shop_gallery
    result_published.disconnect(shop_gallery.place, sender=TryOnJob)
    result_unpublished.disconnect(shop_gallery.remove, sender=TryOnJob)


def messages_of(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def run_action(client, action, jobs):
    return client.post(
        reverse(CHANGELIST), {"action": action, "_selected_action": [str(j.pk) for j in jobs]}
    )


def test_publishing_records_the_moment_and_the_gallery_takes_the_picture(picture, gallery):
    job = picture()
    outcome = publishing.publish(TryOnJob.objects.filter(pk=job.pk))
    assert (outcome.changed, outcome.not_applicable, outcome.refused) == (1, 0, [])
    assert gallery.placed == [job.pk]
    job.refresh_from_db()
    assert job.published_at is not None


def test_a_published_picture_is_published_once(picture, gallery):
    job = picture()
    publishing.publish(TryOnJob.objects.filter(pk=job.pk))
    again = publishing.publish(TryOnJob.objects.filter(pk=job.pk))
    assert (again.changed, again.not_applicable) == (0, 1)
    assert gallery.placed == [job.pk]


@pytest.mark.parametrize(
    "fields",
    [
        {"source": JobSource.SHOPPER},  # a shopper's picture shows the shopper
        {"status": JobStatus.FAILED, "result_image": ""},
        {"status": JobStatus.PROCESSING, "result_image": "", "finished_at": None},
        {"result_image": ""},  # succeeded, but its result was erased
    ],
)
def test_only_a_staff_picture_with_a_result_can_be_published(picture, gallery, fields):
    job = picture(**fields)
    outcome = publishing.publish(TryOnJob.objects.filter(pk=job.pk))
    assert (outcome.changed, outcome.not_applicable) == (0, 1)
    assert gallery.placed == []
    job.refresh_from_db()
    assert job.published_at is None
    assert not publishing.is_publishable(job)


def test_without_a_gallery_nothing_is_published_and_staff_are_told_why(picture):
    job = picture()
    outcome = publishing.publish(TryOnJob.objects.filter(pk=job.pk))
    assert outcome.changed == 0
    [(refused_job, reason)] = outcome.refused
    assert refused_job.pk == job.pk
    assert "result_published" in reason
    job.refresh_from_db()
    assert job.published_at is None


def test_a_gallery_that_refuses_leaves_the_job_unpublished(picture, gallery):
    refused, accepted = picture(), picture()
    gallery.refuse_with = "link the garment to a product first."
    outcome = publishing.publish(TryOnJob.objects.filter(pk=refused.pk))
    assert outcome.refused[0][1] == "link the garment to a product first."
    gallery.refuse_with = None
    assert publishing.publish(TryOnJob.objects.filter(pk=accepted.pk)).changed == 1
    refused.refresh_from_db()
    accepted.refresh_from_db()
    assert refused.published_at is None
    assert accepted.published_at is not None


def test_a_gallery_that_fails_rolls_the_record_back(picture):
    job = picture()

    def broken(sender, job, **kwargs):
        raise OSError("the gallery's storage is down")

    result_published.connect(broken, sender=TryOnJob, weak=False)
    try:
        with pytest.raises(OSError):
            publishing.publish(TryOnJob.objects.filter(pk=job.pk))
    finally:
        result_published.disconnect(broken, sender=TryOnJob)
    job.refresh_from_db()
    assert job.published_at is None


def test_unpublishing_tells_the_gallery_and_clears_the_moment(picture, gallery):
    job, never_published = picture(), picture()
    publishing.publish(TryOnJob.objects.filter(pk=job.pk))
    outcome = publishing.unpublish(TryOnJob.objects.filter(pk__in=[job.pk, never_published.pk]))
    assert (outcome.changed, outcome.not_applicable) == (1, 1)
    assert gallery.removed == [job.pk]
    job.refresh_from_db()
    assert job.published_at is None
    assert publishing.is_publishable(job)


def test_a_gallery_that_removed_the_picture_itself_marks_the_job_unpublished(picture, gallery):
    job = picture()
    publishing.publish(TryOnJob.objects.filter(pk=job.pk))
    job.refresh_from_db()
    other_moment = job.published_at - timezone.timedelta(seconds=1)
    assert not publishing.forget_publication(job.pk, other_moment)  # a newer publication stays
    assert publishing.forget_publication(job.pk, job.published_at)
    job.refresh_from_db()
    assert job.published_at is None
    assert gallery.removed == []  # no signal: the gallery itself took it out


# The admin ------------------------------------------------------------------------------


def test_the_admin_action_publishes_and_reports(admin_client, picture, gallery):
    chosen, shoppers = picture(), picture(source=JobSource.SHOPPER)
    response = run_action(admin_client, "publish_pictures", [chosen, shoppers])
    assert messages_of(response) == [
        "1 picture was published to its product's gallery.",
        "1 job was left as it is: only a catalogue picture made from the admin, succeeded "
        "and not yet published, can be published.",
    ]
    assert gallery.placed == [chosen.pk]
    listing = admin_client.get(reverse(CHANGELIST), {"published": "yes"}).content.decode()
    assert str(chosen.pk)[:8] in listing
    assert str(shoppers.pk)[:8] not in listing


def test_the_admin_action_shows_why_a_picture_was_refused(admin_client, picture):
    job = picture()
    response = run_action(admin_client, "publish_pictures", [job])
    messages = messages_of(response)
    assert messages[0] == "0 pictures were published to their products' galleries."
    assert messages[1].startswith(f"The picture of job {str(job.pk)[:8]} was not published: ")
    assert "result_published" in messages[1]


def test_the_admin_action_unpublishes(admin_client, picture, gallery):
    job = picture()
    publishing.publish(TryOnJob.objects.filter(pk=job.pk))
    response = run_action(admin_client, "unpublish_pictures", [job])
    assert messages_of(response) == ["1 picture was taken out of its product's gallery."]
    assert gallery.removed == [job.pk]


def test_a_pictures_page_offers_publish_then_unpublish(admin_client, picture, gallery):
    job = picture()
    page = reverse("admin:django_tryon_tryonjob_change", args=[job.pk])
    publish_url = reverse("admin:django_tryon_tryonjob_operation", args=[job.pk, "publish"])
    unpublish_url = reverse("admin:django_tryon_tryonjob_operation", args=[job.pk, "unpublish"])
    html = admin_client.get(page).content.decode()
    assert publish_url in html
    assert unpublish_url not in html
    assert admin_client.post(publish_url).status_code == 302
    html = admin_client.get(page).content.decode()
    assert publish_url not in html
    assert unpublish_url in html


def test_publishing_needs_the_change_permission(client, django_user_model, picture, gallery):
    user = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_tryonjob"))
    client.force_login(user)
    job = picture()
    publish_url = reverse("admin:django_tryon_tryonjob_operation", args=[job.pk, "publish"])
    assert client.post(publish_url).status_code == 403
    run_action(client, "publish_pictures", [job])
    assert gallery.placed == []
    job.refresh_from_db()
    assert job.published_at is None


def test_the_job_list_says_which_pictures_are_in_the_gallery(admin_client, picture, gallery):
    published, other = picture(), picture()
    publishing.publish(TryOnJob.objects.filter(pk=published.pk))
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert html.count("in the product&#x27;s gallery") == 1
    assert str(other.pk)[:8] in html
