"""Admin forms: garment and model photo uploads through the photo intake, and the
choices of the "Generate try-on pictures" action."""

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext_lazy as _

from ..images import normalise_image
from ..models import Garment, ModelPhoto


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
    image_purpose = "garment"
    stored_name = "garment"

    class Meta:
        model = Garment
        fields = ["name", "image", "clothes_type", "is_active", "content_type", "object_id"]


class ModelPhotoForm(IntakeImageForm):
    image_purpose = "person"
    stored_name = "model"

    class Meta:
        model = ModelPhoto
        fields = ["name", "image", "is_active"]


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
