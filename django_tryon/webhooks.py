"""The endpoints providers call when a task ends (webhooks), one view per provider.

``POST tryon/webhooks/<provider>/<job id>/<secret>/``: the URL the worker gave
the provider with the job's submit (:mod:`django_tryon.callbacks`). Every
delivery goes through the same steps, in this order (the base view,
:class:`WebhookView`); a provider's view names only its provider:

1. **Refused unread**: another method than ``POST`` (405), a declared body over
   :attr:`WebhookView.max_body_bytes` (413).
2. **Authenticated**: the job of the URL exists and the URL's secret is the
   one given with its submit, compared in constant time (403 otherwise, the
   same answer for an unknown job and a wrong secret), and the job was made by
   this view's provider.
3. **Parsed** by the backend (``parse_callback``), which checks the body's
   shape and, for a provider that signs its deliveries (fal), the signature
   (400; 503 while the provider's keys cannot be fetched, to be delivered
   again). Only a delivery to an authenticated URL is parsed, so a forger
   who lacks the URL's secret never makes the shop fetch keys.
   The body must name the job's own task (400 otherwise: a delivery for
   another task, replayed at this URL).
4. **Applied** through :mod:`django_tryon.transitions`, without the worker's
   lease: a final success is stored as pushed (the worker downloads it, so
   the request never waits on a download), a failure ends the job, a task
   still running moves the job. Only a job still in flight with nothing
   pushed yet is changed, so a repeated or late delivery changes nothing
   (and is answered 200, so the provider stops sending it).
5. **Handed on** once committed: to Celery with ``CELERY_ENABLED``, else the
   job is due now and ``tryon_poll`` takes it on its next pass
   (:func:`django_tryon.queueing.jobs_due_now`).

The views are CSRF-exempt (the caller is a provider's server, which has no
cookie to forge a request with: the URL's secret is the credential), read no
session and have no throttle a provider's burst could trip.
"""

import logging
import uuid
from datetime import timedelta
from typing import Any, ClassVar

from django.db import transaction
from django.http import HttpRequest, HttpResponseNotAllowed, JsonResponse
from django.urls import path
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from . import callbacks, transitions
from .backends import backend_named
from .backends.base import (
    SUCCEEDED,
    ProviderUnavailableError,
    RequestRejectedError,
    TaskState,
    TryOnBackend,
)
from .conf import tryon_settings
from .models import IN_FLIGHT_STATUSES, TryOnJob
from .queueing import jobs_due_now

logger = logging.getLogger("django_tryon.webhooks")

#: Seconds a provider is asked to wait before delivering again a webhook that came
#: before the worker had recorded the job's submit.
RETRY_AFTER_SECONDS = 5
#: The longest result URL kept from a delivery (the column is text; this is a sanity cap).
MAX_RESULT_URL_LENGTH = 4096
#: The answer to a delivery whose URL does not authenticate (one for every reason).
NOT_VALID = "This webhook URL is not valid: unknown job or wrong secret."


class Refused(Exception):
    """A delivery answered with ``status`` and ``message``, nothing changed."""

    def __init__(self, status: int, message: str, *, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


@method_decorator(csrf_exempt, name="dispatch")
class WebhookView(View):
    """Receives one provider's deliveries (see the module's docstring for the steps).

    Subclasses set :attr:`provider_name`, the backend's own, and may set
    :attr:`max_body_bytes`.
    """

    provider_name: ClassVar[str] = ""
    #: The largest body read; a larger declared one is refused unread (413).
    max_body_bytes: ClassVar[int] = 64 * 1024
    http_method_names = ["post"]

    def post(self, request: HttpRequest, job_id: str, secret: str) -> JsonResponse:
        try:
            self.check_size(request)
            job = self.authenticate(job_id, secret)
            backend = self.get_backend()
            try:
                task_id, state = self.parse(backend, request)
            finally:
                backend.close()
            if task_id != job.provider_task_id:
                raise Refused(400, "The delivery names another task than this job's.")
            outcome = self.apply(job, state)
        except Refused as refused:
            logger.warning(
                "Webhook for job %s (%s) refused, HTTP %d: %s",
                job_id[:40],
                self.provider_name,
                refused.status,
                refused.message,
            )
            response = JsonResponse({"error": refused.message}, status=refused.status)
            if refused.retry_after is not None:
                response["Retry-After"] = str(refused.retry_after)
            return _logged(response)
        except Exception:
            # Logged here, without the URL (Django's own line would show the secret);
            # the provider delivers again, and the fallback query ends the job anyway.
            logger.exception("Webhook for job %s (%s) failed.", job_id[:40], self.provider_name)
            return _logged(JsonResponse({"error": "The delivery failed; try again."}, status=500))
        logger.info("Webhook for job %s (%s): %s.", job.pk, self.provider_name, outcome)
        return JsonResponse({"status": outcome})

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any):
        # Django's own would log the path, secret included.
        logger.warning("Webhook (%s) refused: method %s.", self.provider_name, request.method)
        return _logged(HttpResponseNotAllowed(["POST"]))

    # The steps ---------------------------------------------------------------

    def check_size(self, request: HttpRequest) -> None:
        declared = str(request.META.get("CONTENT_LENGTH") or "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise Refused(413, f"The body is over {self.max_body_bytes} bytes.")

    def authenticate(self, job_id: str, secret: str) -> TryOnJob:
        """The job the URL names, if its secret is the job's; :class:`Refused` otherwise."""
        try:
            pk = uuid.UUID(job_id)
        except ValueError:
            pk = None
        job = TryOnJob.objects.filter(pk=pk).first() if pk is not None else None
        stored = job.callback_digest if job is not None else ""
        if job is not None and not stored and job.submit_started_at is not None:
            # The provider answered before the worker recorded the submit (and the
            # secret's digest with it): ask for the delivery again shortly.
            raise Refused(
                503,
                "The job's submit is not recorded yet; deliver again later.",
                retry_after=RETRY_AFTER_SECONDS,
            )
        # The digest is computed whether or not the job exists: the time taken does
        # not tell an unknown job from a wrong secret.
        if not callbacks.matches(secret, stored or "0" * 64) or job is None:
            raise Refused(403, NOT_VALID)
        if job.provider and job.provider != self.provider_name:
            raise Refused(403, f"This job was not made by {self.provider_name}.")
        return job

    def get_backend(self) -> TryOnBackend:
        """The backend that parses this provider's deliveries: the primary's or a
        fallback's (``FALLBACK_BACKENDS``), with that provider's own settings."""
        backend = backend_named(self.provider_name)
        if backend is None:
            raise Refused(404, f"This shop does not use {self.provider_name} as its provider.")
        return backend

    def parse(self, backend: TryOnBackend, request: HttpRequest) -> tuple[str, TaskState]:
        try:
            return backend.parse_callback(request)
        except RequestRejectedError as err:
            message = err.message or "The delivery is not one this provider sends."
            raise Refused(400, message) from err
        except ProviderUnavailableError as err:
            # The delivery cannot be checked now (the provider's signing keys are
            # out of reach): neither accepted nor refused for good.
            raise Refused(
                503,
                "The delivery cannot be verified now; deliver again later.",
                retry_after=RETRY_AFTER_SECONDS,
            ) from err

    def apply(self, job: TryOnJob, state: TaskState) -> str:
        """Record ``state`` for ``job``; return what happened, in words."""
        now = timezone.now()
        status = transitions.status_for_state(state.status)
        expected: tuple[str, ...] = IN_FLIGHT_STATUSES
        if state.status == SUCCEEDED:
            if len(state.result_url) > MAX_RESULT_URL_LENGTH:
                raise Refused(400, "The result URL is too long.")
            # The URL is only kept here: the worker downloads it under the
            # result-URL policy (results.py), as one a query answered.
            change = transitions.pushed(now, result_url=state.result_url)
        elif state.is_final:
            error = state.error
            change = transitions.ends_lease(
                transitions.failed(
                    getattr(error, "job_error_code", "provider_error"),
                    now=now,
                    provider_code=getattr(error, "code", "") or "",
                    request_id=state.request_id,
                    detail=transitions.error_detail(error),
                )
            )
        else:
            fallback = timedelta(seconds=float(tryon_settings.WEBHOOK_FALLBACK_INTERVAL))
            change = transitions.moved(
                status, next_attempt_at=now + fallback, request_id=state.request_id
            )
            # A job already so: the same news again moves nothing (nor its fallback).
            expected = tuple(other for other in IN_FLIGHT_STATUSES if other != status)
        with transaction.atomic():
            done = transitions.apply(
                [job.pk],
                change,
                now=now,
                expected=expected,
                provider_task_id=job.provider_task_id,
                pushed_at__isnull=True,
            )
            if done and state.status == SUCCEEDED:
                jobs_due_now(done)
        if not done:
            return "already recorded"
        return f"recorded as {status}"


def _logged(response):
    """``response``, marked as logged already: Django logs every 4xx and 5xx with its
    path (``django.request``), which holds the job's secret; the view logged it
    without the secret."""
    response._has_been_logged = True  # read by django.utils.log.log_response
    return response


class FashnWebhookView(WebhookView):
    """FASHN's deliveries: the status answer of a prediction that ended, unsigned."""

    provider_name = "fashn"


class FalWebhookView(WebhookView):
    """fal's deliveries: the request's outcome (its output, or its error), signed
    with Ed25519; the backend checks the signature against fal's published keys."""

    provider_name = "fal"


#: Every provider's webhook view, by provider name (each gets its URL).
VIEWS: dict[str, Any] = {view.provider_name: view for view in (FashnWebhookView, FalWebhookView)}

urlpatterns = [
    path(
        f"webhooks/{name}/<str:job_id>/<str:secret>/",
        view.as_view(),
        name=f"webhook-{name}",
    )
    for name, view in VIEWS.items()
]
