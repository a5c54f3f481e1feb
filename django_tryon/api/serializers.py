"""What the shopper API reads and writes."""

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from ..conf import tryon_settings
from ..images import ImageRejected, IntakeBusy, normalise_image
from ..models import Garment, JobStatus, ModelPhoto, TryOnJob
from . import exceptions
from . import schema as openapi
from .timing import Hint, hint_for


def _file_url(fieldfile):
    return fieldfile.storage.url(fieldfile.name) if fieldfile else None


@openapi.component("TryOnGarment")
class GarmentSerializer(serializers.ModelSerializer):
    image_url = serializers.SerializerMethodField(
        help_text="The garment image, as its storage serves it."
    )

    class Meta:
        model = Garment
        fields = ["id", "name", "clothes_type", "image_url"]

    def get_image_url(self, garment) -> str | None:
        return _file_url(garment.image)


@openapi.component("TryOnModelPhoto")
class ModelPhotoSerializer(serializers.ModelSerializer):
    image_url = serializers.SerializerMethodField(
        help_text="The model photo, as its storage serves it."
    )

    class Meta:
        model = ModelPhoto
        fields = ["id", "name", "image_url"]

    def get_image_url(self, model_photo) -> str | None:
        return _file_url(model_photo.image)


@openapi.component("TryOnJob")
class JobSerializer(serializers.ModelSerializer):
    """The job JSON."""

    garment: "serializers.PrimaryKeyRelatedField[Garment]" = serializers.PrimaryKeyRelatedField(
        read_only=True
    )
    model_photo: "serializers.PrimaryKeyRelatedField[ModelPhoto]" = (
        serializers.PrimaryKeyRelatedField(
            read_only=True,
            allow_null=True,
            help_text="The offered model photo the garment is tried on; null for the shopper's "
            "own photo.",
        )
    )
    result_url = serializers.SerializerMethodField(
        help_text="The try-on picture once `succeeded`; null before, and once erased."
    )
    error = serializers.SerializerMethodField()
    reused = serializers.SerializerMethodField(
        help_text="True only in the answer to a POST that an earlier job answered."
    )
    check_again_in = serializers.SerializerMethodField(
        help_text="Seconds after this answer when the job may have changed: ask again then. "
        "Follows the worker's own plan, so the result is seen as soon as it is stored. "
        "Null once the job has ended."
    )
    check_again_planned = serializers.SerializerMethodField(
        help_text="True when `check_again_in` follows a plan of reads for a job whose provider "
        "pushes its end, spending no more reads per job on average than a read 1 s after "
        "sending, then 1.5 times later each time (up to every 5 s): follow it even when it "
        "comes sooner than such a clock's read."
    )

    class Meta:
        model = TryOnJob
        fields = [
            "id",
            "status",
            "garment",
            "model_photo",
            "result_url",
            "error",
            "created_at",
            "finished_at",
            "reused",
            "check_again_in",
            "check_again_planned",
        ]
        read_only_fields = fields

    def get_result_url(self, job) -> str | None:
        if job.status != JobStatus.SUCCEEDED:
            return None
        return _file_url(job.result_image)

    @openapi.job_error_field()
    def get_error(self, job):
        error = job.error
        return {"code": error["code"], "message": str(error["message"])} if error else None

    def get_reused(self, job) -> bool:
        """From the context: true only in the answer to a request that an earlier job
        answered."""
        return bool(self.context.get("reused", False))

    def get_check_again_in(self, job) -> float | None:
        return self._hint(job).seconds

    def get_check_again_planned(self, job) -> bool:
        return self._hint(job).planned

    def _hint(self, job) -> Hint:
        """The job's hint, worked out once for both of its fields."""
        hints = self.__dict__.setdefault("_hints", {})
        if id(job) not in hints:
            hints[id(job)] = (job, hint_for(job, timezone.now()))
        return hints[id(job)][1]


class AvailableField(serializers.PrimaryKeyRelatedField):
    """The id of a row of the field's queryset; any other value, malformed or not, is
    "not available" (``does_not_exist``): the answer never tells which."""

    def run_validation(self, data=serializers.empty):
        # An empty form field is a missing value: the documented code `required` (or no
        # value, for a field that may be left out), not the `null` DRF gives a relation
        # sent as an empty string.
        if data == "":
            if self.required:
                self.fail("required")
            data = serializers.empty
        return super().run_validation(data)

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError:
            self.fail("does_not_exist", pk_value=data)


@openapi.component("TryOnJobCreate")
class JobCreateSerializer(serializers.Serializer):
    """A try-on request."""

    garment = AvailableField(
        queryset=Garment.objects.active(),
        help_text="The id of an active garment (see the garment list).",
        error_messages={
            "required": _("Choose a garment to try on."),
            "null": _("Choose a garment to try on."),
            "does_not_exist": _("This garment is not available for try-on."),
        },
    )
    person_image = serializers.FileField(
        required=False,
        allow_empty_file=True,
        help_text="The shopper's photo: JPEG, PNG or WebP (HEIC with the `heic` extra), at "
        "most `MAX_UPLOAD_BYTES`. Send it, or `model_photo`: exactly one of the two.",
        use_url=False,
        error_messages={
            "required": _("Choose a photo of yourself to try the garment on."),
            "invalid": _("Send the photo as a file, in a multipart/form-data request."),
            "no_name": _("Send the photo as a file, in a multipart/form-data request."),
        },
    )
    model_photo = AvailableField(
        queryset=ModelPhoto.objects.offered(),
        required=False,
        help_text="Instead of `person_image`: the id of a model photo the shop offers (see "
        "the model photo list). No consent is needed: the photo is the shop's.",
        error_messages={
            "required": _("Choose one of the models to try the garment on."),
            "null": _("Choose one of the models to try the garment on."),
            "does_not_exist": exceptions.MODEL_PHOTO_NOT_OFFERED,
        },
    )
    consent = serializers.BooleanField(
        required=False,
        default=False,
        help_text="The shopper agreed to their photo being sent to the try-on service. "
        "Needed when `REQUIRE_CONSENT` is on (the default).",
        error_messages={"invalid": _("Consent must be true or false.")},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A pick of a model photo sends no photo of the shopper's, and needs no consent;
        # without one, the shopper's photo is required. (Without data, as the schema
        # is generated, either may be sent.)
        data = getattr(self, "initial_data", None)
        self.picks_model_photo = data is not None and data.get("model_photo") not in (None, "")
        if data is not None:
            self.fields["person_image"].required = not self.picks_model_photo

    def validate_consent(self, value):
        if tryon_settings.REQUIRE_CONSENT and not value and not self.picks_model_photo:
            raise serializers.ValidationError(
                _(
                    "Please agree to your photo being sent to the try-on service: it is "
                    "needed to make the picture."
                ),
                code="consent_required",
            )
        return value

    def validate(self, attrs):
        """Exactly one photo: the shopper's or an offered model photo's. The shopper's is
        normalised only once the cheap fields are valid; ``validated_data["photo"]`` is
        then a :class:`~django_tryon.images.NormalisedImage`, else ``None``."""
        if attrs.get("model_photo") is not None:
            if attrs.get("person_image") is not None:
                raise serializers.ValidationError(
                    _("Send either your own photo or one of the models, not both."),
                    code="photo_and_model_photo",
                )
            attrs["photo"] = None
            return attrs
        try:
            attrs["photo"] = normalise_image(attrs["person_image"], purpose="person")
        except IntakeBusy as err:
            raise exceptions.IntakeBusy(str(err.messages[0]), err.retry_after) from err
        except ImageRejected as err:
            raise serializers.ValidationError(
                {"person_image": [ErrorDetail(str(err.messages[0]), code=err.code)]}
            ) from err
        return attrs
