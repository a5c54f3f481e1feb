"""Try-on jobs in the admin: read-only records of the worker's work, and the actions
that put a job back in line (retry), stop it (cancel) or hurry it (poll now),
and those that publish a catalogue picture to its product's gallery or take it
back (see :mod:`django_tryon.publishing`).

Jobs are machine-written, so no field can be edited and no job added here.
The actions need the "Can change try-on job" permission: with the view
permission alone, staff see the jobs but cannot act on them. Deleting jobs
(and so their photos) is left to superusers.
"""

import hashlib
import uuid

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .. import publishing
from ..models import ACTIVE_STATUSES, JobSource, TryOnJob
from . import operations
from .display import EMPTY, duration, status_badge, thumbnail
from .overview import overview_view

#: The buttons of a job's page, and the action each runs.
OPERATION_ACTIONS = {
    "retry": "retry_jobs",
    "cancel": "cancel_jobs",
    "poll": "poll_now",
    "publish": "publish_pictures",
    "unpublish": "unpublish_pictures",
}


class PublishedFilter(admin.SimpleListFilter):
    title = gettext_lazy("published")
    parameter_name = "published"

    def lookups(self, request, model_admin):
        return [("yes", _("Published")), ("no", _("Not published"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(published_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(published_at__isnull=True)
        return queryset


@admin.register(TryOnJob)
class TryOnJobAdmin(admin.ModelAdmin):
    # Six columns, so the list fits 1280 px beside the admin's menu and the filters:
    # a status cell also says how it went (time to result, or error codes and
    # attempts); the owner says "catalogue" for the admin's own jobs.
    list_display = (
        "short_id",
        "status_summary",
        "garment",
        "pictures",
        "owner",
        "created",
    )
    list_display_links = ("short_id",)
    list_filter = (
        "status",
        "source",
        ("garment", admin.RelatedOnlyFieldListFilter),
        "created_at",
        "error_code",
        PublishedFilter,
    )
    list_select_related = ("garment", "user")
    search_fields = ("=provider_task_id", "=provider_request_id", "garment__name")
    search_help_text = gettext_lazy(
        "A job id, a provider task id or request id, or a garment's name."
    )
    ordering = ("-created_at",)
    actions = ["retry_jobs", "cancel_jobs", "poll_now", "publish_pictures", "unpublish_pictures"]
    readonly_fields = (
        "status_label",
        "owner",
        "photo_preview",
        "result_preview",
        "duration_display",
    )
    fieldsets = (
        (None, {"fields": ("id", "status_label", "garment", "source", "owner", "model_photo")}),
        (gettext_lazy("Pictures"), {"fields": ("photo_preview", "result_preview")}),
        (
            gettext_lazy("Error"),
            {"fields": ("error_code", "error_message", "error_detail", "provider_error_code")},
        ),
        (
            gettext_lazy("Provider"),
            {"fields": ("provider", "provider_task_id", "provider_request_id", "pushed_at")},
        ),
        (
            gettext_lazy("Worker"),
            {
                "classes": ("collapse",),
                "fields": (
                    "attempts",
                    "polls",
                    "next_attempt_at",
                    "lease_owner",
                    "lease_expires_at",
                    "submit_started_at",
                    "last_polled_at",
                    "provider_seconds",
                ),
            },
        ),
        (
            gettext_lazy("Dates"),
            {
                "fields": (
                    "created_at",
                    "submitted_at",
                    "finished_at",
                    "duration_display",
                    "consent_at",
                    "photos_erased_at",
                    "published_at",
                    "updated_at",
                )
            },
        ),
    )

    class Media:
        css = {"all": ("django_tryon/admin/tryon_admin.css",)}

    # Permissions -------------------------------------------------------------------

    def has_add_permission(self, request):
        return False  # jobs come from the shopper API and the garments' action

    def has_change_permission(self, request, obj=None):
        # A job's page is read-only; the change permission (asked without a
        # job) is the permission to run the actions.
        if obj is not None:
            return False
        return super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    # Search ----------------------------------------------------------------------------

    def get_search_results(self, request, queryset, search_term):
        """Also find a job by its id (the UUID shoppers and logs quote)."""
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            job_id = uuid.UUID(search_term.strip())
        except ValueError:
            return found, may_have_duplicates
        return found | queryset.filter(pk=job_id), may_have_duplicates

    # Columns ---------------------------------------------------------------------------

    @admin.display(description=gettext_lazy("job"), ordering="created_at")
    def short_id(self, obj):
        return str(obj.pk)[:8]

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_label(self, obj):
        return status_badge(obj)

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_summary(self, obj):
        """The badge, and under it the time to result, or the error codes and attempts."""
        details = []
        if obj.duration is not None:
            details.append(format_html("{}", duration(obj.duration)))
        if obj.error_code or obj.provider_error_code:
            codes = [code for code in (obj.error_code, obj.provider_error_code) if code]
            # The shopper's words, then the provider's or the network's own.
            hover = " ".join(text for text in (obj.error_message, obj.error_detail) if text)
            details.append(
                format_html(
                    '<span class="tryon-error-code" title="{}">{}</span>',
                    Truncator(hover).chars(300),
                    format_html_join(mark_safe("<br>"), "{}", ((code,) for code in codes)),
                )
            )
        if obj.published_at is not None:
            details.append(format_html("{}", _("in the product's gallery")))
        if obj.attempts > 1:
            details.append(
                format_html(
                    "{}",
                    ngettext("%(count)d attempt", "%(count)d attempts", obj.attempts)
                    % {"count": obj.attempts},
                )
            )
        if not details:
            return status_badge(obj)
        return format_html(
            '{}<small class="tryon-status-detail">{}</small>',
            status_badge(obj),
            format_html_join(mark_safe("<br>"), "{}", ((detail,) for detail in details)),
        )

    @admin.display(description=gettext_lazy("photo and result"))
    def pictures(self, obj):
        return format_html(
            '<span class="tryon-pictures">{}{}</span>',
            thumbnail(obj.person_image, size=40, missing=self._photo_missing(obj)),
            thumbnail(obj.result_image, size=40),
        )

    @admin.display(description=gettext_lazy("owner"))
    def owner(self, obj):
        if obj.user_id:
            return obj.user.get_username()
        if obj.session_key:
            # A short digest tells guests apart without showing their session key.
            digest = hashlib.sha256(obj.session_key.encode()).hexdigest()[:8]
            return _("guest %(digest)s") % {"digest": digest}
        if obj.source == JobSource.ADMIN:
            return _("catalogue")
        if obj.source == JobSource.SHARED:
            return _("shared with shoppers")
        return EMPTY

    @admin.display(description=gettext_lazy("duration"))
    def duration_display(self, obj):
        return duration(obj.duration)

    @admin.display(description=gettext_lazy("created"), ordering="created_at")
    def created(self, obj):
        return date_format(timezone.localtime(obj.created_at), "SHORT_DATETIME_FORMAT")

    @admin.display(description=gettext_lazy("person photo"))
    def photo_preview(self, obj):
        return thumbnail(obj.person_image, size=320, missing=self._photo_missing(obj))

    @admin.display(description=gettext_lazy("result"))
    def result_preview(self, obj):
        return thumbnail(obj.result_image, size=320)

    def _photo_missing(self, obj):
        return _("erased") if obj.photos_erased_at else EMPTY

    # Actions ----------------------------------------------------------------------------

    @admin.action(
        description=gettext_lazy("Retry the selected failed or expired jobs"),
        permissions=["change"],
    )
    def retry_jobs(self, request, queryset):
        outcome = operations.retry_jobs(queryset)
        self._report(
            request,
            outcome.changed,
            ngettext(
                "%(count)d job was sent back to the queue.",
                "%(count)d jobs were sent back to the queue.",
                outcome.changed,
            ),
        )
        self._report_left(
            request,
            outcome.wrong_status,
            ngettext(
                "%(count)d job was not failed or expired and was left as it is.",
                "%(count)d jobs were not failed or expired and were left as they are.",
                outcome.wrong_status,
            ),
        )
        self._report_left(
            request,
            outcome.no_photo,
            ngettext(
                "%(count)d job cannot be retried: its photo was erased.",
                "%(count)d jobs cannot be retried: their photos were erased.",
                outcome.no_photo,
            ),
        )

    @admin.action(
        description=gettext_lazy("Cancel the selected pending or running jobs"),
        permissions=["change"],
    )
    def cancel_jobs(self, request, queryset):
        outcome = operations.cancel_jobs(queryset)
        self._report(
            request,
            outcome.changed,
            ngettext(
                "%(count)d job was canceled.", "%(count)d jobs were canceled.", outcome.changed
            ),
        )
        self._report_left(request, outcome.wrong_status, self._already_ended(outcome))

    @admin.action(
        description=gettext_lazy("Poll now: make the selected running jobs due"),
        permissions=["change"],
    )
    def poll_now(self, request, queryset):
        outcome = operations.make_due(queryset)
        self._report(
            request,
            outcome.changed,
            ngettext(
                "%(count)d job will be taken by the next worker pass.",
                "%(count)d jobs will be taken by the next worker pass.",
                outcome.changed,
            ),
        )
        self._report_left(request, outcome.wrong_status, self._already_ended(outcome))

    @admin.action(
        description=gettext_lazy("Publish the selected pictures to their product's gallery"),
        permissions=["change"],
    )
    def publish_pictures(self, request, queryset):
        outcome = publishing.publish(queryset)
        self._report(
            request,
            outcome.changed,
            ngettext(
                "%(count)d picture was published to its product's gallery.",
                "%(count)d pictures were published to their products' galleries.",
                outcome.changed,
            ),
        )
        for job, reason in outcome.refused:
            self.message_user(
                request,
                _("The picture of job %(job)s was not published: %(reason)s")
                % {"job": str(job.pk)[:8], "reason": reason},
                messages.ERROR,
            )
        self._report_left(
            request,
            outcome.not_applicable,
            ngettext(
                "%(count)d job was left as it is: only a catalogue picture made from the "
                "admin, succeeded and not yet published, can be published.",
                "%(count)d jobs were left as they are: only catalogue pictures made from the "
                "admin, succeeded and not yet published, can be published.",
                outcome.not_applicable,
            ),
        )

    @admin.action(
        description=gettext_lazy("Unpublish the selected pictures from their product's gallery"),
        permissions=["change"],
    )
    def unpublish_pictures(self, request, queryset):
        outcome = publishing.unpublish(queryset)
        self._report(
            request,
            outcome.changed,
            ngettext(
                "%(count)d picture was taken out of its product's gallery.",
                "%(count)d pictures were taken out of their products' galleries.",
                outcome.changed,
            ),
        )
        self._report_left(
            request,
            outcome.not_applicable,
            ngettext(
                "%(count)d job was not published and was left as it is.",
                "%(count)d jobs were not published and were left as they are.",
                outcome.not_applicable,
            ),
        )

    def _already_ended(self, outcome):
        return ngettext(
            "%(count)d job had already ended and was left as it is.",
            "%(count)d jobs had already ended and were left as they are.",
            outcome.wrong_status,
        )

    def _report(self, request, count, message):
        level = messages.SUCCESS if count else messages.WARNING
        self.message_user(request, message % {"count": count}, level)

    def _report_left(self, request, count, message):
        if count:
            self.message_user(request, message % {"count": count}, messages.WARNING)

    # The status overview ------------------------------------------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "overview/",
                self.admin_site.admin_view(self.overview_view),
                name="{}_{}_overview".format(*info),
            ),
            path(
                "<path:object_id>/run/<str:operation>/",
                self.admin_site.admin_view(self.operation_view),
                name="{}_{}_operation".format(*info),
            ),
            *super().get_urls(),
        ]

    def overview_view(self, request):
        return overview_view(self, request)

    # The same actions as buttons on a job's page -------------------------------------

    def job_operations(self, request, obj):
        """``[(operation, label)]`` of the actions that apply to ``obj`` for this user."""
        if obj is None or not self.has_change_permission(request):
            return []
        available = []
        retryable = obj.status in operations.RETRYABLE_STATUSES
        if retryable and obj.person_image and not obj.photos_erased_at:
            available.append(("retry", _("Retry")))
        if obj.status in ACTIVE_STATUSES:
            available += [("poll", _("Poll now")), ("cancel", _("Cancel"))]
        if publishing.is_publishable(obj):
            available.append(("publish", _("Publish to the gallery")))
        elif obj.published_at is not None:
            available.append(("unpublish", _("Unpublish from the gallery")))
        return available

    def operation_view(self, request, object_id, operation):
        """Run one action on one job (POST from its page), then show the page again."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        action = OPERATION_ACTIONS.get(operation)
        if action is None or not self.has_change_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404(_("No try-on job with this id."))
        getattr(self, action)(request, TryOnJob.objects.filter(pk=obj.pk))
        return HttpResponseRedirect(
            reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        job_operations = []
        if obj is not None:
            job_operations = [
                (
                    reverse(
                        f"admin:{self.opts.app_label}_{self.opts.model_name}_operation",
                        args=[obj.pk, operation],
                    ),
                    label,
                )
                for operation, label in self.job_operations(request, obj)
            ]
        extra_context = {"job_operations": job_operations, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            "title": _("Try-on jobs"),
            "overview_url": reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_overview"),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context)
