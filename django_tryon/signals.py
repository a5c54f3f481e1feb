"""Signals a shop can connect to.

Both are sent once per change, after the job's new state is committed (see
:mod:`django_tryon.transitions`), with ``sender=TryOnJob`` and ``job=<the job>``.
"""

from django.dispatch import Signal

#: A job's result is on storage. Receivers get ``job``.
job_succeeded: Signal = Signal()

#: A job ended ``failed`` or ``expired``. Receivers get ``job``; its
#: ``error_code`` and ``error_message`` say why.
job_failed: Signal = Signal()
