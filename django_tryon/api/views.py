"""The shopper API views: thin, over :mod:`django_tryon.shopper` and
:mod:`django_tryon.retention`. See ``docs/api.md``."""

import uuid

from django.db import transaction
from django.middleware.csrf import get_token
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from rest_framework import status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import quota
from ..addresses import client_address
from ..conf import tryon_settings
from ..images import MESSAGES as IMAGE_MESSAGES
from ..models import Garment, JobSource, ModelPhoto
from ..retention import erase_job
from ..shared import ModelPhotoUnreadable, release, start_shared_job
from ..shopper import start_job
from . import schema as openapi
from .authentication import ShopperSessionAuthentication
from .exceptions import (
    JobNotFound,
    ModelPhotoNotOffered,
    TooFast,
    UploadTooLarge,
    api_exception_handler,
    quota_refusal,
)
from .ownership import guest_job_started, owner_for
from .serializers import (
    GarmentSerializer,
    JobCreateSerializer,
    JobSerializer,
    ModelPhotoSerializer,
)
from .throttling import ShopperRateThrottle

# Room for the multipart framing and the small fields around the photo.
MULTIPART_ALLOWANCE = 64 * 1024


class ShopperAPIView(APIView):
    """The API's policies, fixed here so a shop's own ``REST_FRAMEWORK`` defaults
    (token auth, ``IsAuthenticated``, pagination) do not change it."""

    authentication_classes = [ShopperSessionAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = [ShopperRateThrottle]
    renderer_classes = [JSONRenderer]
    parser_classes = [MultiPartParser, FormParser]

    def get_exception_handler(self):
        return api_exception_handler

    def throttled(self, request, wait):
        raise TooFast(wait)


# Outside a shop's ATOMIC_REQUESTS: start_job writes the photo's file, then the
# row in its own transaction, and deletes the file if the row is not written.
# Inside a request-wide transaction that rolled back later, the file would
# stay with no row naming it.
@method_decorator(transaction.non_atomic_requests, name="dispatch")
@method_decorator(never_cache, name="dispatch")  # a shopper's own, see JobDetailView
class JobListView(ShopperAPIView):
    @openapi.create_job
    def post(self, request):
        _refuse_oversized_body(request)
        serializer = JobCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        owner = owner_for(request, create_session=True)
        now = timezone.now()
        address = client_address(request)
        try:
            if data.get("model_photo") is not None:
                job, reused = start_shared_job(
                    owner, data["garment"], data["model_photo"], now=now, address=address
                )
            else:
                job, reused = start_job(
                    owner,
                    data["garment"],
                    data["photo"],
                    consent_at=now if data["consent"] else None,
                    now=now,
                    address=address,
                )
        except quota.QuotaExceeded as err:
            raise quota_refusal(err) from err
        except ModelPhotoUnreadable as err:
            raise ModelPhotoNotOffered() from err
        if not reused:
            guest_job_started(request)
        location = request.build_absolute_uri(
            reverse("django_tryon:job-detail", kwargs={"pk": job.pk})
        )
        return Response(
            JobSerializer(job, context={"reused": reused}).data,
            status=status.HTTP_200_OK if reused else status.HTTP_201_CREATED,
            headers={"Location": location},
        )


# A shopper's try-on (its result's address among it) is kept by no cache: a shared
# one that ignores Vary: Cookie, or caches what says nothing, would show it to the
# next visitor; the browser's own, after the shopper erased it.
@method_decorator(never_cache, name="dispatch")
class JobDetailView(ShopperAPIView):
    @openapi.read_job
    def get(self, request, pk):
        get_token(request)  # the CSRF cookie, for the DELETE that may follow
        return Response(JobSerializer(_owned_job(request, pk)).data)

    @openapi.erase_job
    def delete(self, request, pk):
        job = _owned_job(request, pk)
        if job.source == JobSource.SHARED:
            # The picture is the shop's and other shoppers may see it: only this
            # shopper's access to it goes.
            release(owner_for(request), job)
        else:
            erase_job(job)
        return Response(status=status.HTTP_204_NO_CONTENT)


class GarmentListView(ShopperAPIView):
    @openapi.list_garments
    def get(self, request):
        get_token(request)  # the CSRF cookie, for the POST that follows
        garments = Garment.objects.active().order_by("name", "pk")
        return Response(GarmentSerializer(garments, many=True).data)


class ModelPhotoListView(ShopperAPIView):
    @openapi.list_model_photos
    def get(self, request):
        get_token(request)  # the CSRF cookie, for the POST that follows
        photos = ModelPhoto.objects.offered().order_by("name", "pk")
        return Response(ModelPhotoSerializer(photos, many=True).data)


def _owned_job(request, pk):
    """The requester's job ``pk`` (or a shared one they picked); anyone else's, or none,
    is the same 404."""
    try:
        job_id = uuid.UUID(str(pk))
    except ValueError as err:
        raise JobNotFound() from err
    job = owner_for(request).visible_jobs().filter(pk=job_id).first()
    if job is None:
        raise JobNotFound()
    return job


def _refuse_oversized_body(request):
    """Refuse from the declared length, before the body is read or spooled to disk."""
    limit = tryon_settings.MAX_UPLOAD_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit + MULTIPART_ALLOWANCE:
        raise UploadTooLarge(
            IMAGE_MESSAGES["too_large_upload"] % {"limit": f"{limit / (1024 * 1024):g}"}
        )
