"""Garments in the admin: the catalogue list, its "Generate try-on pictures" action,
and each garment's gallery of pictures."""

import functools

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from ..models import Garment, JobSource, JobStatus, ModelPhoto, TryOnJob
from ..redaction import redact
from . import products
from .display import EMPTY, thumbnail
from .files import ReplacedImageCleanupMixin
from .forms import GarmentForm, GenerateForm
from .operations import PhotoUnreadable, create_jobs, plan_generation

#: Pictures shown in a garment's gallery; the job list has them all.
GALLERY_LIMIT = 48

SUCCEEDED_WITH_RESULT = Q(status=JobStatus.SUCCEEDED) & ~Q(result_image="")


def _count_of_jobs(condition=None):
    """A subquery counting a garment's jobs (per row, so no GROUP BY over the catalogue)."""
    jobs = TryOnJob.objects.filter(garment=OuterRef("pk"))
    if condition is not None:
        jobs = jobs.filter(condition)
    counted = jobs.order_by().values("garment").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


class HasPicturesFilter(admin.SimpleListFilter):
    title = gettext_lazy("try-on pictures")
    parameter_name = "has_pictures"

    def lookups(self, request, model_admin):
        return [("yes", _("With pictures")), ("no", _("Without pictures"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(result_count__gt=0)
        if self.value() == "no":
            return queryset.filter(result_count=0)
        return queryset


@admin.register(Garment)
class GarmentAdmin(ReplacedImageCleanupMixin, admin.ModelAdmin):
    form = GarmentForm
    list_display = (
        "thumbnail",
        "name",
        "clothes_type",
        "product_link",
        "is_active",
        "job_count",
        "result_count",
    )
    list_display_links = ("thumbnail", "name")
    list_filter = (
        "is_active",
        "clothes_type",
        HasPicturesFilter,
        ("content_type", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("name", "=object_id")
    actions = ["generate_tryon_pictures"]
    readonly_fields = ("image_preview", "results_gallery", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "image", "image_preview", "clothes_type", "is_active")}),
        (gettext_lazy("Product"), {"fields": ("linked_product",)}),
        (gettext_lazy("Try-on pictures"), {"fields": ("results_gallery",)}),
        (gettext_lazy("Dates"), {"fields": ("created_at", "updated_at")}),
    )

    class Media:
        css = {"all": ("django_tryon/admin/tryon_admin.css",)}

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        # The product picker needs to know whose products, and who is asking.
        return type(form.__name__, (form,), {"admin_site": self.admin_site, "request": request})

    def get_urls(self):
        search = self.admin_site.admin_view(functools.partial(products.search_view, self))
        return [
            path("products/", search, name="django_tryon_garment_products"),
            *super().get_urls(),
        ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                job_count=_count_of_jobs(),
                result_count=_count_of_jobs(SUCCEEDED_WITH_RESULT),
            )
            .prefetch_related("product")
        )

    # Columns ---------------------------------------------------------------

    @admin.display(description=gettext_lazy("image"))
    def thumbnail(self, obj):
        return thumbnail(obj.image, alt=obj.name, size=48)

    @admin.display(description=gettext_lazy("product"))
    def product_link(self, obj):
        if not obj.content_type_id:
            return EMPTY
        product = obj.product
        if product is None:
            return format_html(
                '<span class="tryon-missing">{}</span>',
                _("missing (id %(id)s)") % {"id": obj.object_id},
            )
        meta = product._meta
        try:
            url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[product.pk])
        except NoReverseMatch:
            return str(product)
        return format_html('<a href="{}">{}</a>', url, product)

    @admin.display(description=gettext_lazy("jobs"), ordering="job_count")
    def job_count(self, obj):
        url = reverse("admin:django_tryon_tryonjob_changelist")
        return format_html('<a href="{}?garment__id__exact={}">{}</a>', url, obj.pk, obj.job_count)

    @admin.display(description=gettext_lazy("pictures"), ordering="result_count")
    def result_count(self, obj):
        return obj.result_count

    # The change page -------------------------------------------------------------

    @admin.display(description=gettext_lazy("preview"))
    def image_preview(self, obj):
        return thumbnail(obj.image, alt=obj.name, size=240)

    @admin.display(description=gettext_lazy("pictures made from the admin"))
    def results_gallery(self, obj):
        if obj.pk is None:
            return _("Save the garment, then generate its try-on pictures from the list.")
        results = (
            obj.jobs.filter(SUCCEEDED_WITH_RESULT, source=JobSource.ADMIN)
            .select_related("model_photo")
            .order_by("-finished_at")
        )
        shown = list(results[:GALLERY_LIMIT])
        return render_to_string(
            "django_tryon/admin/results_gallery.html",
            {
                "jobs": shown,
                "total": len(shown) if len(shown) < GALLERY_LIMIT else results.count(),
                "garment": obj,
                "jobs_url": reverse("admin:django_tryon_tryonjob_changelist"),
                "succeeded": JobStatus.SUCCEEDED,
            },
        )

    # "Generate try-on pictures" ------------------------------------------------------

    def has_generate_permission(self, request):
        """Making jobs spends the provider's credits: it needs "Can add try-on job"."""
        return request.user.has_perm(f"{TryOnJob._meta.app_label}.add_{TryOnJob._meta.model_name}")

    @admin.action(description=gettext_lazy("Generate try-on pictures"), permissions=["generate"])
    def generate_tryon_pictures(self, request, queryset):
        """Ask which model photos to use, show the cost, then make one job per pair."""
        garments = list(queryset.order_by("name", "pk"))
        step = request.POST.get("post")
        form = GenerateForm(request.POST if step else None)
        if step == "yes" and form.is_valid():
            plan = plan_generation(
                garments,
                form.cleaned_data["model_photos"],
                include_existing=form.cleaned_data["include_existing"],
            )
            self._generate(request, plan)
            return None  # back to the change list, like Django's delete action
        return self._confirmation_page(request, garments, form)

    def _generate(self, request, plan):
        try:
            jobs = create_jobs(plan)
        except PhotoUnreadable as err:
            self.message_user(
                request,
                _("The model photo “%(photo)s” cannot be read (%(error)s): no job was queued.")
                % {"photo": err.photo, "error": redact(err.error)},
                messages.ERROR,
            )
            return
        made: dict[Garment, list[str]] = {}
        for job in jobs:
            made.setdefault(job.garment, []).append(job.model_photo.name)
        for garment, photo_names in made.items():
            self.log_change(
                request,
                garment,
                _("Queued try-on pictures with: %(photos)s.") % {"photos": ", ".join(photo_names)},
            )
        count = len(jobs)
        if count:
            self.message_user(
                request,
                ngettext(
                    "%(count)d try-on job was queued: it makes %(count)d request to the provider.",
                    "%(count)d try-on jobs were queued: they make %(count)d requests to the "
                    "provider.",
                    count,
                )
                % {"count": count},
                messages.SUCCESS,
            )
        else:
            self.message_user(request, _("No try-on job was queued."), messages.WARNING)
        # Pairs whose jobs another generation made meanwhile are on their way too.
        self._report_skipped(request, plan, plan.call_count - count)

    def _report_skipped(self, request, plan, taken_meanwhile):
        if plan.skipped_with_result:
            self.message_user(
                request,
                ngettext(
                    "%(count)d pair already has a picture and was skipped.",
                    "%(count)d pairs already have a picture and were skipped.",
                    plan.skipped_with_result,
                )
                % {"count": plan.skipped_with_result},
                messages.INFO,
            )
        in_progress = plan.skipped_in_progress + taken_meanwhile
        if in_progress:
            self.message_user(
                request,
                ngettext(
                    "%(count)d pair already has a job on its way and was skipped.",
                    "%(count)d pairs already have a job on its way and were skipped.",
                    in_progress,
                )
                % {"count": in_progress},
                messages.INFO,
            )

    def _confirmation_page(self, request, garments, form):
        photos = list(ModelPhoto.objects.filter(is_active=True).order_by("name", "pk"))
        include_existing = bool(form.is_bound and form.data.get("include_existing"))
        if form.is_bound:
            chosen = set(form.data.getlist("model_photos"))
        else:
            # One photo is the obvious choice; among several, staff pick.
            chosen = {str(photos[0].pk)} if len(photos) == 1 else set()
        plan = plan_generation(garments, photos, include_existing=include_existing)
        rows = [
            {
                "photo": photo_plan.photo,
                "chosen": str(photo_plan.photo.pk) in chosen,
                "new": len(photo_plan.new),
                "with_result": len(photo_plan.with_result),
                "in_progress": len(photo_plan.in_progress),
                "calls": len(photo_plan.garments_to_make(include_existing)),
            }
            for photo_plan in plan.photos
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": _("Generate try-on pictures"),
            "subtitle": None,
            "opts": self.model._meta,
            "garments": garments,
            "form": form,
            "rows": rows,
            "include_existing": include_existing,
            "call_count": sum(row["calls"] for row in rows if row["chosen"]),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(
            request, "admin/django_tryon/garment/generate_confirmation.html", context
        )
