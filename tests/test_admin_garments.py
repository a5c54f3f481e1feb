"""The admin of garments and model photos: intake of their images, the list's counts,
the gallery, and the "Generate try-on pictures" action."""

import hashlib
import io

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import Image

from django_tryon.admin.operations import plan_generation
from django_tryon.models import Garment, JobSource, JobStatus, ModelPhoto, TryOnJob
from tests.support.images import make_image_bytes
from tests.support.media import stored_files
from tests.testapp.models import Product

CHANGELIST = "admin:django_tryon_garment_changelist"


def png_with_alpha(size=(400, 400)):
    buffer = io.BytesIO()
    Image.new("RGBA", size, (200, 30, 30, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_with_exif(size=(400, 800)):
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90 degrees to display
    Image.new("RGB", size, (90, 90, 200)).save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


def upload(content, name):
    file = io.BytesIO(content)
    file.name = name
    return file


def login_staff(client, django_user_model, *codenames):
    user = django_user_model.objects.create_user("staff", password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


def messages_of(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def photos(db):
    return [
        ModelPhoto.objects.create(
            name=name,
            image=ContentFile(make_image_bytes((400, 800), color), name=f"{name}.jpg"),
        )
        for name, color in (("Anna", (10, 20, 30)), ("Ben", (40, 50, 60)))
    ]


@pytest.fixture
def garments(db):
    return [
        Garment.objects.create(
            name=name,
            clothes_type="upper_body",
            image=ContentFile(make_image_bytes((400, 400), (5, 5, 5 + i)), name="g.jpg"),
        )
        for i, name in enumerate(("Blouse", "Coat", "Shirt"))
    ]


def job_for(garment, photo, status, *, result=True, source=JobSource.ADMIN):
    return TryOnJob.objects.create(
        garment=garment,
        model_photo=photo,
        source=source,
        status=status,
        person_image="tryon/photos/p.jpg",
        result_image="tryon/results/r.png" if result and status == JobStatus.SUCCEEDED else "",
    )


# Intake of images -----------------------------------------------------------------


def test_a_model_photo_upload_is_normalised(admin_client, media_root):
    response = admin_client.post(
        reverse("admin:django_tryon_modelphoto_add"),
        {"name": "Clara", "is_active": "on", "image": upload(jpeg_with_exif(), "IMG_1.jpeg")},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    photo = ModelPhoto.objects.get(name="Clara")
    assert photo.image.name.startswith("tryon/models/") and photo.image.name.endswith(".jpg")
    with Image.open(photo.image.path) as stored:
        # Orientation applied (400x800 turned on its side), metadata gone.
        assert stored.size == (800, 400)
        assert not stored.getexif()
    assert stored_files(media_root) == {photo.image.name}


def test_a_garment_with_transparency_stays_png(admin_client):
    product = Product.objects.create(name="Red top")
    response = admin_client.post(
        reverse("admin:django_tryon_garment_add"),
        {
            "name": "Red top",
            "clothes_type": "upper_body",
            "is_active": "on",
            "image": upload(png_with_alpha(), "top.png"),
            "linked_product": f"testapp.product:{product.pk}",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    garment = Garment.objects.get()
    assert garment.image.name.endswith(".png")
    assert garment.product == product
    with Image.open(garment.image.path) as stored:
        assert stored.mode == "RGBA"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"not a picture at all", "Upload a valid image"),
        (make_image_bytes((100, 100)), "too small"),
    ],
    ids=["not-an-image", "too-small"],
)
def test_an_unusable_upload_is_refused_with_a_reason(admin_client, media_root, content, expected):
    response = admin_client.post(
        reverse("admin:django_tryon_modelphoto_add"),
        {"name": "Bad", "is_active": "on", "image": upload(content, "bad.jpg")},
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["image"]
    assert expected in " ".join(errors)
    assert not ModelPhoto.objects.exists()
    assert stored_files(media_root) == set()


def test_replacing_an_image_deletes_the_old_file(
    admin_client, media_root, photos, django_capture_on_commit_callbacks
):
    photo = photos[0]
    old_name = photo.image.name
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:django_tryon_modelphoto_change", args=[photo.pk]),
            {"name": photo.name, "is_active": "on", "image": upload(make_image_bytes(), "n.jpg")},
        )
    assert response.status_code == 302
    photo.refresh_from_db()
    assert photo.image.name != old_name
    files = stored_files(media_root)
    assert photo.image.name in files and old_name not in files


def test_saving_without_a_new_image_keeps_the_file(admin_client, media_root, photos):
    photo = photos[0]
    response = admin_client.post(
        reverse("admin:django_tryon_modelphoto_change", args=[photo.pk]),
        {"name": "Anna B.", "is_active": "on"},
    )
    assert response.status_code == 302
    photo.refresh_from_db()
    assert photo.name == "Anna B."
    assert photo.image.name in stored_files(media_root)


# The list and the change page -------------------------------------------------------


def test_the_list_counts_jobs_and_pictures(admin_client, garments, photos):
    blouse, coat, _shirt = garments
    job_for(blouse, photos[0], JobStatus.SUCCEEDED)
    job_for(blouse, photos[1], JobStatus.FAILED)
    job_for(blouse, None, JobStatus.SUCCEEDED, source=JobSource.SHOPPER)
    job_for(coat, photos[0], JobStatus.SUCCEEDED, result=False)  # result erased
    response = admin_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    rows = {g.name: g for g in response.context["cl"].result_list}
    assert (rows["Blouse"].job_count, rows["Blouse"].result_count) == (3, 2)
    assert (rows["Coat"].job_count, rows["Coat"].result_count) == (1, 0)
    assert (rows["Shirt"].job_count, rows["Shirt"].result_count) == (0, 0)
    with_pictures = admin_client.get(reverse(CHANGELIST), {"has_pictures": "yes"})
    assert [g.name for g in with_pictures.context["cl"].result_list] == ["Blouse"]
    without = admin_client.get(reverse(CHANGELIST), {"has_pictures": "no"})
    assert [g.name for g in without.context["cl"].result_list] == ["Coat", "Shirt"]


def test_the_list_links_products_without_a_query_per_row(admin_client, db):
    def add_garments(count):
        for i in range(count):
            garment = Garment(name=f"G{i}", clothes_type="full_body", image="tryon/g.jpg")
            garment.product = Product.objects.create(name=f"Product {i}")
            garment.save()

    add_garments(2)
    with CaptureQueriesContext(connection) as few:
        response = admin_client.get(reverse(CHANGELIST))
    assert "Product 1" in response.content.decode()
    add_garments(20)
    with CaptureQueriesContext(connection) as many:
        admin_client.get(reverse(CHANGELIST))
    assert len(many) == len(few)


def test_the_change_page_shows_the_gallery_of_admin_pictures(admin_client, garments, photos):
    blouse = garments[0]
    mine = job_for(blouse, photos[0], JobStatus.SUCCEEDED)
    shopper = job_for(blouse, None, JobStatus.SUCCEEDED, source=JobSource.SHOPPER)
    shopper.result_image = "tryon/results/shopper-private.png"
    shopper.save()
    response = admin_client.get(reverse("admin:django_tryon_garment_change", args=[blouse.pk]))
    page = response.content.decode()
    assert 'class="tryon-gallery"' in page
    assert mine.result_image.url in page
    assert "shopper-private" not in page
    assert "Anna" in page
    empty = admin_client.get(reverse("admin:django_tryon_garment_change", args=[garments[1].pk]))
    assert "No picture yet" in empty.content.decode()


def test_deleting_garments_from_the_list_works_with_the_counts(admin_client, garments, photos):
    job_for(garments[0], photos[0], JobStatus.SUCCEEDED)
    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "delete_selected", "_selected_action": [garments[0].pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Garment.objects.filter(pk=garments[0].pk).exists()
    assert not TryOnJob.objects.exists()


# "Generate try-on pictures" ---------------------------------------------------------------


def generate(client, garments, **data):
    return client.post(
        reverse(CHANGELIST),
        {
            "action": "generate_tryon_pictures",
            "_selected_action": [g.pk for g in garments],
            **data,
        },
    )


def test_the_action_first_asks_which_photos(admin_client, garments, photos):
    job_for(garments[0], photos[0], JobStatus.SUCCEEDED)
    job_for(garments[1], photos[0], JobStatus.PROCESSING)
    response = generate(admin_client, garments)
    assert response.status_code == 200
    assert response.templates[0].name == "admin/django_tryon/garment/generate_confirmation.html"
    rows = {row["photo"].name: row for row in response.context["rows"]}
    assert (rows["Anna"]["new"], rows["Anna"]["with_result"], rows["Anna"]["in_progress"]) == (
        1,
        1,
        1,
    )
    assert (rows["Ben"]["new"], rows["Ben"]["with_result"], rows["Ben"]["in_progress"]) == (3, 0, 0)
    # Two photos: none chosen for the staff, so nothing is spent by accident.
    assert response.context["call_count"] == 0
    assert not TryOnJob.objects.filter(status=JobStatus.PENDING).exists()


def test_counting_again_shows_the_requests_it_will_make(admin_client, garments, photos):
    job_for(garments[0], photos[0], JobStatus.SUCCEEDED)
    response = generate(
        admin_client, garments, post="recount", model_photos=[photos[0].pk, photos[1].pk]
    )
    assert response.context["call_count"] == 2 + 3
    assert 'id="tryon-call-count">5<' in response.content.decode()
    again = generate(
        admin_client,
        garments,
        post="recount",
        model_photos=[photos[0].pk],
        include_existing="on",
    )
    assert again.context["call_count"] == 3
    assert TryOnJob.objects.count() == 1


def test_a_single_photo_is_chosen_for_the_staff(admin_client, garments, photos):
    photos[1].is_active = False
    photos[1].save()
    response = generate(admin_client, garments)
    assert [row["photo"].name for row in response.context["rows"]] == ["Anna"]
    assert response.context["call_count"] == 3


def test_confirming_makes_one_job_per_pair_and_skips_pairs_with_a_picture(
    admin_client, garments, photos, media_root
):
    done = job_for(garments[0], photos[0], JobStatus.SUCCEEDED)
    running = job_for(garments[1], photos[0], JobStatus.QUEUED)
    response = generate(
        admin_client, garments, post="yes", model_photos=[photos[0].pk, photos[1].pk]
    )
    assert response.status_code == 302
    made = TryOnJob.objects.exclude(pk__in=[done.pk, running.pk])
    assert sorted((j.garment.name, j.model_photo.name) for j in made) == [
        ("Blouse", "Ben"),
        ("Coat", "Ben"),
        ("Shirt", "Anna"),
        ("Shirt", "Ben"),
    ]
    originals = {p.pk: p.image.read() for p in photos}
    names = set()
    for job in made:
        assert job.source == JobSource.ADMIN
        assert job.status == JobStatus.PENDING
        assert job.user is None and job.session_key == ""
        content = job.person_image.read()
        assert content == originals[job.model_photo_id]
        assert job.photo_digest == hashlib.sha256(content).hexdigest()
        assert job.person_image.name != job.model_photo.image.name
        names.add(job.person_image.name)
    assert len(names) == 4  # each job owns its own copy
    assert set(TryOnJob.objects.due().filter(status=JobStatus.PENDING)) == set(made)
    assert messages_of(response) == [
        "4 try-on jobs were queued: they make 4 requests to the provider.",
        "1 pair already has a picture and was skipped.",
        "1 pair already has a job on its way and was skipped.",
    ]
    log = LogEntry.objects.get(object_id=str(garments[2].pk))
    assert "Anna, Ben" in log.get_change_message()


def test_confirming_with_existing_pictures_makes_them_again(admin_client, garments, photos):
    job_for(garments[0], photos[0], JobStatus.SUCCEEDED)
    response = generate(
        admin_client, garments[:1], post="yes", model_photos=[photos[0].pk], include_existing="on"
    )
    assert response.status_code == 302
    assert TryOnJob.objects.filter(status=JobStatus.PENDING).count() == 1
    assert messages_of(response) == ["1 try-on job was queued: it makes 1 request to the provider."]


def test_nothing_to_make_says_so(admin_client, garments, photos):
    job_for(garments[0], photos[0], JobStatus.SUCCEEDED)
    response = generate(admin_client, garments[:1], post="yes", model_photos=[photos[0].pk])
    assert TryOnJob.objects.count() == 1
    assert messages_of(response) == [
        "No try-on job was queued.",
        "1 pair already has a picture and was skipped.",
    ]


def test_confirming_without_a_photo_asks_again(admin_client, garments, photos):
    response = generate(admin_client, garments, post="yes")
    assert response.status_code == 200
    assert "Choose at least one model photo." in response.content.decode()
    assert not TryOnJob.objects.exists()


def test_inactive_or_unknown_photos_cannot_be_chosen(admin_client, garments, photos):
    photos[1].is_active = False
    photos[1].save()
    response = generate(admin_client, garments, post="yes", model_photos=[photos[1].pk])
    assert response.status_code == 200
    assert response.context["form"].errors["model_photos"]
    assert not TryOnJob.objects.exists()


def test_without_model_photos_the_page_says_how_to_add_one(admin_client, garments):
    response = generate(admin_client, garments)
    page = response.content.decode()
    assert "There is no active model photo yet." in page
    assert reverse("admin:django_tryon_modelphoto_add") in page


def test_an_unreadable_model_photo_queues_nothing_and_leaves_no_file(
    admin_client, garments, photos, media_root
):
    photos[1].image.storage.delete(photos[1].image.name)
    before = stored_files(media_root)
    response = generate(
        admin_client, garments, post="yes", model_photos=[photos[0].pk, photos[1].pk]
    )
    assert response.status_code == 302
    assert not TryOnJob.objects.exists()
    assert stored_files(media_root) == before
    assert "cannot be read" in messages_of(response)[0]


def test_a_failed_insert_leaves_no_copied_file(garments, photos, media_root, monkeypatch):
    from django_tryon.admin import operations

    def broken_bulk_create(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(TryOnJob.objects, "bulk_create", broken_bulk_create)
    before = stored_files(media_root)
    with pytest.raises(RuntimeError):
        operations.create_jobs(plan_generation(garments, photos))
    assert stored_files(media_root) == before


def test_the_action_needs_the_add_job_permission(client, django_user_model, garments, photos):
    login_staff(client, django_user_model, "view_garment", "change_garment", "view_tryonjob")
    page = client.get(reverse(CHANGELIST))
    assert "generate_tryon_pictures" not in page.content.decode()
    for step in ("", "yes"):
        response = generate(client, garments, post=step, model_photos=[photos[0].pk])
        assert "rows" not in (response.context or {})
    assert not TryOnJob.objects.exists()


def test_staff_with_the_add_job_permission_can_generate(
    client, django_user_model, garments, photos
):
    login_staff(client, django_user_model, "view_garment", "add_tryonjob")
    page = client.get(reverse(CHANGELIST))
    assert "generate_tryon_pictures" in page.content.decode()
    response = generate(client, garments, post="yes", model_photos=[photos[0].pk])
    assert response.status_code == 302
    assert TryOnJob.objects.count() == 3


def test_generated_jobs_are_handed_to_celery_when_enabled(
    admin_client, settings, garments, photos, monkeypatch, django_capture_on_commit_callbacks
):
    from django_tryon import tasks

    sent = []
    monkeypatch.setattr(tasks, "enqueue", lambda job_id, due=None: sent.append(job_id))
    settings.TRYON = {**settings.TRYON, "CELERY_ENABLED": True}
    with django_capture_on_commit_callbacks(execute=True):
        generate(admin_client, garments, post="yes", model_photos=[photos[0].pk])
    assert sorted(sent) == sorted(TryOnJob.objects.values_list("pk", flat=True))
    assert len(sent) == 3


def test_deleting_model_photos_from_the_list_keeps_their_jobs(admin_client, garments, photos):
    made = job_for(garments[0], photos[0], JobStatus.SUCCEEDED)
    response = admin_client.post(
        reverse("admin:django_tryon_modelphoto_changelist"),
        {"action": "delete_selected", "_selected_action": [photos[0].pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not ModelPhoto.objects.filter(pk=photos[0].pk).exists()
    made.refresh_from_db()
    assert made.model_photo is None and made.person_image  # the job has its own copy


def test_a_long_gallery_links_to_all_pictures(admin_client, garments, photos, monkeypatch):
    from django_tryon.admin import garments as garment_admin

    monkeypatch.setattr(garment_admin, "GALLERY_LIMIT", 2)
    for photo in photos + photos:
        job_for(garments[0], photo, JobStatus.SUCCEEDED)
    response = admin_client.get(reverse("admin:django_tryon_garment_change", args=[garments[0].pk]))
    page = response.content.decode()
    assert page.count('class="tryon-gallery-item"') == 2
    assert "Showing the latest 2 of 4 pictures." in page
    assert f"garment__id__exact={garments[0].pk}&amp;status__exact=succeeded" in page


def test_pairs_another_generation_took_meanwhile_are_skipped_and_leave_no_file(
    garments, photos, media_root
):
    from django_tryon.admin import operations

    plan = plan_generation(garments, [photos[0]])
    # Two generations of the same pairs at once (two staff, or a double click):
    # the other one commits a job for the coat between this one's plan and insert.
    job_for(garments[1], photos[0], JobStatus.QUEUED)
    before = stored_files(media_root)

    made = operations.create_jobs(plan)

    assert sorted(job.garment.name for job in made) == ["Blouse", "Shirt"]
    assert TryOnJob.objects.filter(garment=garments[1], model_photo=photos[0]).count() == 1
    # Only the jobs made keep a copy of the photo.
    assert stored_files(media_root) - before == {job.person_image.name for job in made}
