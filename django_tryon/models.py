"""Garments, try-on jobs, staff model photos and shoppers' daily usage."""

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .errors import MESSAGES as ERROR_MESSAGES
from .errors import message_for
from .storage import (
    garment_image_name,
    model_photo_name,
    person_image_name,
    result_storage,
    upload_storage,
)

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class ClothesType(models.TextChoices):
    UPPER_BODY = "upper_body", _("Upper body")
    LOWER_BODY = "lower_body", _("Lower body")
    FULL_BODY = "full_body", _("Full body")


class GarmentQuerySet(models.QuerySet["Garment"]):
    def active(self) -> "GarmentQuerySet":
        return self.filter(is_active=True)

    def for_object(self, obj: models.Model) -> "GarmentQuerySet":
        """Garments linked to ``obj``, any model instance of the shop's."""
        return self.filter(
            content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk)
        )

    def get_for(self, obj: Any) -> "Garment | None":
        """The active garment of a product, or ``None``: ``Garment.objects.get_for(product)``.

        ``obj`` may be a :class:`Garment` itself, which is returned if active.
        """
        if isinstance(obj, Garment):
            return obj if obj.is_active else None
        if obj is None or getattr(obj, "pk", None) is None:
            return None
        return self.active().for_object(obj).order_by("-updated_at").first()


class Garment(models.Model):
    """A piece of clothing shoppers can try on, optionally linked to a product."""

    name = models.CharField(_("name"), max_length=200)
    image = models.ImageField(
        _("image"),
        upload_to=garment_image_name,
        storage=upload_storage,
        max_length=255,
        help_text=_("A flat-lay photo of the single garment on a plain background."),
    )
    clothes_type = models.CharField(_("clothes type"), max_length=20, choices=ClothesType.choices)
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Shoppers can try on active garments only.")
    )
    content_type = models.ForeignKey(
        ContentType,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        verbose_name=_("product type"),
    )
    # Text, so products with integer, UUID or text keys can all be linked.
    object_id = models.CharField(_("product id"), max_length=64, blank=True, default="")
    product = GenericForeignKey("content_type", "object_id")
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = GarmentQuerySet.as_manager()

    class Meta:
        verbose_name = _("garment")
        verbose_name_plural = _("garments")
        ordering = ["name"]
        indexes = [
            models.Index(fields=["content_type", "object_id"], name="tryon_garment_product_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class ModelPhotoQuerySet(models.QuerySet["ModelPhoto"]):
    def offered(self) -> "ModelPhotoQuerySet":
        """The photos shoppers may try garments on: active and offered by staff."""
        return self.filter(is_active=True, offered_to_shoppers=True)


class ModelPhoto(models.Model):
    """A staff photo of a model: catalogue try-on pictures are made on it, and shoppers
    with no photo at hand may try garments on it when staff offer it."""

    name = models.CharField(_("name"), max_length=200)
    image = models.ImageField(
        _("photo"), upload_to=model_photo_name, storage=upload_storage, max_length=255
    )
    is_active = models.BooleanField(_("active"), default=True)
    offered_to_shoppers = models.BooleanField(
        _("offered to shoppers"),
        default=False,
        help_text=_(
            "Shoppers with no photo of their own at hand may try garments on this photo. "
            "The picture of a garment on it is made once and shown to every shopper who "
            "picks the same pair."
        ),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = ModelPhotoQuerySet.as_manager()

    class Meta:
        verbose_name = _("model photo")
        verbose_name_plural = _("model photos")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class JobStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    QUEUED = "queued", _("Queued")
    PROCESSING = "processing", _("Processing")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    EXPIRED = "expired", _("Expired")
    CANCELED = "canceled", _("Canceled")


#: Jobs the worker still has to move along.
ACTIVE_STATUSES = (JobStatus.PENDING, JobStatus.QUEUED, JobStatus.PROCESSING)
#: Jobs at the provider, waiting for their result.
IN_FLIGHT_STATUSES = (JobStatus.QUEUED, JobStatus.PROCESSING)
TERMINAL_STATUSES = (
    JobStatus.SUCCEEDED,
    JobStatus.FAILED,
    JobStatus.EXPIRED,
    JobStatus.CANCELED,
)


class JobSource(models.TextChoices):
    SHOPPER = "shopper", _("Shopper")
    ADMIN = "admin", _("Admin")
    # A garment on a model photo, started by a shopper but owned by the shop: every
    # shopper who picks the same pair sees it through a TryOnShare.
    SHARED = "shared", _("Shoppers' model photo")


class TryOnJobQuerySet(models.QuerySet["TryOnJob"]):
    def active(self) -> "TryOnJobQuerySet":
        return self.filter(status__in=ACTIVE_STATUSES)

    def due(self, now: datetime | None = None) -> "TryOnJobQuerySet":
        """Active jobs whose next step is due and whose lease is free."""
        now = now or timezone.now()
        return self.active().filter(
            Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now),
            next_attempt_at__lte=now,
        )


class TryOnJob(models.Model):
    """One try-on: a person photo and a garment, on their way to a picture."""

    Status = JobStatus
    Source = JobSource

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    garment = models.ForeignKey(
        Garment, on_delete=models.CASCADE, related_name="jobs", verbose_name=_("garment")
    )
    person_image = models.ImageField(
        _("person photo"),
        upload_to=person_image_name,
        storage=upload_storage,
        max_length=255,
        blank=True,
    )
    photo_digest = models.CharField(
        _("photo digest"),
        max_length=64,
        blank=True,
        default="",
        editable=False,
        help_text=_("SHA-256 of the normalised photo, to reuse results of repeated tries."),
    )
    status = models.CharField(
        _("status"), max_length=20, choices=JobStatus.choices, default=JobStatus.PENDING
    )
    provider = models.CharField(_("provider"), max_length=50, blank=True, default="")
    provider_task_id = models.CharField(
        _("provider task id"), max_length=255, blank=True, default=""
    )
    provider_request_id = models.CharField(
        _("provider request id"),
        max_length=255,
        blank=True,
        default="",
        help_text=_("The provider's id of the last request: quote it to their support."),
    )
    provider_error_code = models.CharField(
        _("provider error code"), max_length=100, blank=True, default=""
    )
    result_image = models.ImageField(
        _("result"), storage=result_storage, max_length=255, blank=True
    )
    error_code = models.CharField(_("error code"), max_length=50, blank=True, default="")
    error_message = models.TextField(_("error message"), blank=True, default="")
    error_detail = models.TextField(
        _("error detail"),
        blank=True,
        default="",
        help_text=_(
            "The last provider or network error in its own words, for staff: what was "
            "tried and what answered. Shoppers see the error message only."
        ),
    )

    # Owner: a signed-in user, or a guest's session; staff jobs may have neither.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="tryon_jobs",
        verbose_name=_("user"),
    )
    session_key = models.CharField(_("session"), max_length=40, blank=True, default="")
    source = models.CharField(
        _("source"), max_length=10, choices=JobSource.choices, default=JobSource.SHOPPER
    )
    model_photo = models.ForeignKey(
        ModelPhoto,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="jobs",
        verbose_name=_("model photo"),
    )
    consent_at = models.DateTimeField(_("consent given at"), null=True, blank=True)
    # The daily-quota counters the job was charged to, space-separated (see quota.py).
    quota_key = models.CharField(max_length=255, blank=True, default="", editable=False)
    quota_day = models.DateField(null=True, blank=True, editable=False)

    # Worker bookkeeping
    attempts = models.PositiveIntegerField(
        _("attempts"), default=0, help_text=_("Transient provider faults so far.")
    )
    polls = models.PositiveIntegerField(_("queries"), default=0)
    last_polled_at = models.DateTimeField(_("last queried at"), null=True, blank=True)
    provider_seconds = models.FloatField(
        _("provider time"),
        null=True,
        blank=True,
        help_text=_(
            "Estimated seconds the provider took, from submission to its result "
            "(learned from to schedule queries)."
        ),
    )
    next_attempt_at = models.DateTimeField(_("next step due"), default=timezone.now)
    lease_owner = models.CharField(_("lease owner"), max_length=64, blank=True, default="")
    lease_expires_at = models.DateTimeField(_("lease expires at"), null=True, blank=True)
    submit_started_at = models.DateTimeField(
        _("submit started at"),
        null=True,
        blank=True,
        help_text=_("Set while a submit may be at the provider without a recorded task id."),
    )

    # Webhooks (see django_tryon.webhooks)
    callback_digest = models.CharField(
        _("webhook secret digest"),
        max_length=64,
        blank=True,
        default="",
        editable=False,
        help_text=_(
            "SHA-256 of the secret in the webhook URL the provider was given (empty: "
            "no webhook asked). The secret itself is never stored."
        ),
    )
    pushed_at = models.DateTimeField(
        _("webhook received at"),
        null=True,
        blank=True,
        help_text=_("When the provider's webhook reported the task done."),
    )
    pushed_result_url = models.TextField(
        _("pushed result URL"),
        blank=True,
        default="",
        editable=False,
        help_text=_("The result URL the webhook reported, for the worker to download."),
    )

    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    started_at = models.DateTimeField(
        _("started at"),
        default=timezone.now,
        help_text=_("When the job was created, or last sent back to the worker by staff."),
    )
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    photos_erased_at = models.DateTimeField(_("photos erased at"), null=True, blank=True)
    published_at = models.DateTimeField(
        _("published at"),
        null=True,
        blank=True,
        help_text=_(
            "When staff published this catalogue picture to the product's gallery "
            "(see django_tryon.publishing); empty while it is not published."
        ),
    )

    objects = TryOnJobQuerySet.as_manager()

    class Meta:
        verbose_name = _("try-on job")
        verbose_name_plural = _("try-on jobs")
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="tryon_job_due_idx",
                condition=Q(status__in=["pending", "queued", "processing"]),
            ),
            models.Index(fields=["status", "finished_at"], name="tryon_job_status_idx"),
            models.Index(fields=["garment", "photo_digest"], name="tryon_job_reuse_idx"),
            models.Index(fields=["session_key", "created_at"], name="tryon_job_session_idx"),
            models.Index(fields=["user", "created_at"], name="tryon_job_user_idx"),
            models.Index(fields=["provider_task_id"], name="tryon_job_task_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.garment_id} / {self.pk} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def error(self) -> "dict[str, StrOrPromise] | None":
        """``{code, message}`` for the shopper, or ``None``.

        The message of a known code is given in the active language (the shopper's):
        ``error_message`` holds the same words in the site's language, as they were
        when the job ended, and is given for codes this app does not know.
        """
        if not self.error_code:
            return None
        if self.error_code in ERROR_MESSAGES or not self.error_message:
            message = message_for(self.error_code)
        else:
            message = self.error_message
        return {"code": self.error_code, "message": message}

    @property
    def duration(self) -> timedelta | None:
        """Time from submission to the end, once both are known."""
        if self.submitted_at and self.finished_at:
            return self.finished_at - self.submitted_at
        return None


class TryOnShare(models.Model):
    """A shopper's access to a try-on of a model photo (``source="shared"``).

    The job, its copy of the model photo and its picture are the shop's: no
    shopper's data is in them, so one paid call serves every shopper who picks
    the same model photo and garment. What is the shopper's is this row; their
    erasure deletes it, and the picture stays for the others.
    """

    job = models.ForeignKey(
        TryOnJob, on_delete=models.CASCADE, related_name="shares", verbose_name=_("try-on job")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="tryon_shares",
        verbose_name=_("user"),
    )
    session_key = models.CharField(_("session"), max_length=40, blank=True, default="")
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("shared try-on")
        verbose_name_plural = _("shared try-ons")
        constraints = [
            models.UniqueConstraint(
                fields=["job", "user"],
                condition=Q(user__isnull=False),
                name="tryon_share_user_unique",
            ),
            models.UniqueConstraint(
                fields=["job", "session_key"],
                condition=Q(user__isnull=True),
                name="tryon_share_session_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["session_key"], name="tryon_share_session_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id} ({self.user_id or 'guest'})"


class DailyUsage(models.Model):
    """How many try-ons one counter (a shopper, a client address, all guests) started
    on one day: the daily quotas (see :mod:`django_tryon.quota`)."""

    key = models.CharField(max_length=80)
    day = models.DateField()
    count = models.PositiveIntegerField(default=0)
    #: Try-ons given back that day (failures not the shopper's): at most the limit,
    #: since a failure may have cost the shop a paid call.
    refunded = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("daily usage")
        verbose_name_plural = _("daily usage")
        constraints = [
            models.UniqueConstraint(fields=["key", "day"], name="tryon_usage_unique_day"),
        ]
        indexes = [
            # The day's usage on the admin overview, and the purge of old days.
            models.Index(fields=["day", "key"], name="tryon_usage_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.day}: {self.count}"


class ProviderState(models.TextChoices):
    UP = "up", _("Up")
    DOWN = "down", _("Down")


class DownReason(models.TextChoices):
    OUT_OF_CREDITS = "out_of_credits", _("out of credits")
    CONFIGURATION = "configuration", _("refused the API key")
    UNAVAILABLE = "unavailable", _("failing")


class ProviderHealth(models.Model):
    """Whether new jobs may go to one provider, as every worker process sees it.

    Written by the workers (:mod:`django_tryon.failover`) with conditional
    updates, so that several processes agree without a coordinator: of two that
    see the same refusal, one records the switch and tells staff.
    """

    State = ProviderState
    Reason = DownReason

    provider = models.CharField(_("provider"), max_length=50, unique=True)
    state = models.CharField(
        _("state"), max_length=10, choices=ProviderState.choices, default=ProviderState.UP
    )
    reason = models.CharField(
        _("reason"), max_length=20, choices=DownReason.choices, blank=True, default=""
    )
    detail = models.TextField(_("detail"), blank=True, default="")
    changed_at = models.DateTimeField(_("state changed at"), default=timezone.now)
    failing_since = models.DateTimeField(
        _("failing since"),
        null=True,
        blank=True,
        help_text=_("The first of the transient failures since its last answered call."),
    )
    last_failure_at = models.DateTimeField(_("last failure at"), null=True, blank=True)
    next_probe_at = models.DateTimeField(_("next check at"), null=True, blank=True)

    class Meta:
        verbose_name = _("provider health")
        verbose_name_plural = _("provider health")
        ordering = ["provider"]

    def __str__(self) -> str:
        return f"{self.provider}: {self.state}"
