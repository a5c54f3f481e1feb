"""What the shopper API reads and writes."""

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from ..conf import tryon_settings
from ..images import ImageRejected, IntakeBusy, normalise_image
from ..models import Garment, JobStatus, TryOnJob
from . import exceptions
from . import schema as openapi
from .timing import check_again_in


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


@openapi.component("TryOnJob")
class JobSerializer(serializers.ModelSerializer):
    """The job JSON."""

    garment: "serializers.PrimaryKeyRelatedField[Garment]" = serializers.PrimaryKeyRelatedField(
        read_only=True
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

    class Meta:
        model = TryOnJob
        fields = [
            "id",
            "status",
            "garment",
            "result_url",
            "error",
            "created_at",
            "finished_at",
            "reused",
            "check_again_in",
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
        return check_again_in(job, timezone.now())


class GarmentField(serializers.PrimaryKeyRelatedField):
    """An active garment's id; any other value, malformed or not, is "not available"."""

    def run_validation(self, data=serializers.empty):
        # An empty form field is a missing garment: the documented code `required`, not
        # the `null` DRF gives a relation sent as an empty string.
        if data == "":
            self.fail("required")
        return super().run_validation(data)

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError:
            self.fail("does_not_exist", pk_value=data)


@openapi.component("TryOnJobCreate")
class JobCreateSerializer(serializers.Serializer):
    """A try-on request."""

    garment = GarmentField(
        queryset=Garment.objects.active(),
        help_text="The id of an active garment (see the garment list).",
        error_messages={
            "required": _("Choose a garment to try on."),
            "null": _("Choose a garment to try on."),
            "does_not_exist": _("This garment is not available for try-on."),
        },
    )
    person_image = serializers.FileField(
        allow_empty_file=True,
        help_text="The shopper's photo: JPEG, PNG or WebP (HEIC with the `heic` extra), at "
        "most `MAX_UPLOAD_BYTES`.",
        use_url=False,
        error_messages={
            "required": _("Choose a photo of yourself to try the garment on."),
            "invalid": _("Send the photo as a file, in a multipart/form-data request."),
            "no_name": _("Send the photo as a file, in a multipart/form-data request."),
        },
    )
    consent = serializers.BooleanField(
        required=False,
        default=False,
        help_text="The shopper agreed to their photo being sent to the try-on service. "
        "Needed when `REQUIRE_CONSENT` is on (the default).",
        error_messages={"invalid": _("Consent must be true or false.")},
    )

    def validate_consent(self, value):
        if tryon_settings.REQUIRE_CONSENT and not value:
            raise serializers.ValidationError(
                _(
                    "Please agree to your photo being sent to the try-on service: it is "
                    "needed to make the picture."
                ),
                code="consent_required",
            )
        return value

    def validate(self, attrs):
        """The photo is normalised only once the cheap fields are valid;
        ``validated_data["photo"]`` is then a :class:`~django_tryon.images.NormalisedImage`."""
        try:
            attrs["photo"] = normalise_image(attrs["person_image"], purpose="person")
        except IntakeBusy as err:
            raise exceptions.IntakeBusy(str(err.messages[0]), err.retry_after) from err
        except ImageRejected as err:
            raise serializers.ValidationError(
                {"person_image": [ErrorDetail(str(err.messages[0]), code=err.code)]}
            ) from err
        return attrs
