"""Signals a shop can connect to.

All are sent with ``sender=TryOnJob`` and ``job=<the job>``. The worker's two are
sent once per change, after the job's new state is committed (see
:mod:`django_tryon.transitions`); the publishing pair inside the transaction that
records it (see :mod:`django_tryon.publishing`).
"""

from django.dispatch import Signal

#: A job's result is on storage. Receivers get ``job``.
job_succeeded: Signal = Signal()

#: A job ended ``failed`` or ``expired``. Receivers get ``job``; its
#: ``error_code`` and ``error_message`` say why.
job_failed: Signal = Signal()

#: Staff chose to publish a catalogue picture (``job.result_image``) to the
#: product's gallery. A receiver places a copy of it in its gallery and returns a
#: true value; it raises :class:`django_tryon.publishing.PublishRefused` (before
#: writing any file) when it cannot. If no receiver returns a true value, the
#: picture stays unpublished.
result_published: Signal = Signal()

#: Staff took a published picture back: receivers remove their copy from the
#: gallery. ``job.published_at`` still says when it was published.
result_unpublished: Signal = Signal()
