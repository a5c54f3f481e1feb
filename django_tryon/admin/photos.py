"""Model photos in the admin: the staff's own models to dress catalogue garments on."""

from django.contrib import admin
from django.db.models import Count
from django.utils.translation import gettext_lazy

from ..models import ModelPhoto
from .display import thumbnail
from .files import ReplacedImageCleanupMixin
from .forms import ModelPhotoForm


@admin.register(ModelPhoto)
class ModelPhotoAdmin(ReplacedImageCleanupMixin, admin.ModelAdmin):
    form = ModelPhotoForm
    list_display = (
        "thumbnail",
        "name",
        "is_active",
        "offered_to_shoppers",
        "job_count",
        "updated_at",
    )
    list_display_links = ("thumbnail", "name")
    # Staff tick which photos shoppers may pick right in the list.
    list_editable = ("offered_to_shoppers",)
    list_filter = ("is_active", "offered_to_shoppers")
    search_fields = ("name",)
    readonly_fields = ("image_preview", "created_at", "updated_at")
    fields = (
        "name",
        "image",
        "image_preview",
        "is_active",
        "offered_to_shoppers",
        "created_at",
        "updated_at",
    )

    class Media:
        css = {"all": ("django_tryon/admin/tryon_admin.css",)}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(job_count=Count("jobs"))

    @admin.display(description=gettext_lazy("photo"))
    def thumbnail(self, obj):
        return thumbnail(obj.image, alt=obj.name, size=64)

    @admin.display(description=gettext_lazy("preview"))
    def image_preview(self, obj):
        return thumbnail(obj.image, alt=obj.name, size=320)

    @admin.display(description=gettext_lazy("jobs"), ordering="job_count")
    def job_count(self, obj):
        return obj.job_count
