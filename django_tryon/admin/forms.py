"""Admin forms: garment and model photo uploads through the photo intake, and the
choices of the "Generate try-on pictures" action."""

from typing import cast

from django import forms
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from ..images import normalise_image
from ..models import Garment, ModelPhoto
from .products import (
    ProductField,
    ProductSelect,
    product_key,
    product_label,
    viewable_admins,
)


class IntakeImageForm(forms.ModelForm):
    """A model form whose ``image`` upload goes through :func:`normalise_image`.

    Subclasses set ``image_purpose``. An unchanged image is left as stored;
    a new upload is checked and re-encoded (metadata stripped, orientation
    applied, fitted to the provider's limits) before it is saved, and an
    unusable one is refused with the intake's own message.
    """

    image_purpose = "person"
    stored_name = "photo"

    def clean_image(self):
        image = self.cleaned_data.get("image")
        if not isinstance(image, UploadedFile):
            return image
        normalised = normalise_image(image, purpose=self.image_purpose)
        return normalised.as_content_file(name=self.stored_name)


class GarmentForm(IntakeImageForm):
    """A garment, and the product it belongs to chosen with a searchable picker.

    ``admin_site`` and ``request`` are set by the garment admin's ``get_form``:
    they say which products may be linked (see :mod:`.products`).
    """

    image_purpose = "garment"
    stored_name = "garment"
    admin_site = None
    request = None

    linked_product = ProductField(
        help_text=_(
            "Optional: the shop's product this garment belongs to, so the product page's "
            "try-on button finds it. Type to search."
        )
    )

    class Meta:
        model = Garment
        fields = ["name", "image", "clothes_type", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = cast(ProductField, self.fields["linked_product"])
        widget = cast(ProductSelect, field.widget)
        if self.admin_site is not None:
            field.admins = viewable_admins(self.admin_site, self.request)
            widget.search_url = reverse(f"{self.admin_site.name}:django_tryon_garment_products")
        field.current = self.instance.product if self.instance.content_type_id else None
        if field.current is not None:
            self.initial.setdefault("linked_product", product_key(field.current))
        key = (
            self.data.get(self.add_prefix("linked_product"))
            if self.is_bound
            else self.initial.get("linked_product")
        )
        try:
            chosen = field.clean(key)
        except ValidationError:
            chosen = None
        if chosen is not None:
            widget.selected_label = product_label(chosen, len(field.admins) > 1)

    def clean(self):
        cleaned = super().clean() or {}
        product = cleaned.get("linked_product")
        if "linked_product" not in self.errors:
            self.instance.content_type = (
                ContentType.objects.get_for_model(product) if product is not None else None
            )
            self.instance.object_id = str(product.pk) if product is not None else ""
        return cleaned


class ModelPhotoForm(IntakeImageForm):
    image_purpose = "person"
    stored_name = "model"

    class Meta:
        model = ModelPhoto
        fields = ["name", "image", "is_active", "offered_to_shoppers"]


class GenerateForm(forms.Form):
    """The confirmation page of "Generate try-on pictures"."""

    model_photos = forms.ModelMultipleChoiceField(
        queryset=ModelPhoto.objects.filter(is_active=True),
        widget=forms.CheckboxSelectMultiple,
        label=_("Model photos"),
        error_messages={"required": _("Choose at least one model photo.")},
    )
    include_existing = forms.BooleanField(
        required=False,
        label=_("Also make new pictures for pairs that already have one"),
        help_text=_("Each makes a new, paid request to the provider."),
    )
