"""Who is asking: the shopper a request speaks for; a guest's try-ons follow them
when they sign in."""

import secrets

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from ..shared import carry_shares_over
from ..shopper import Owner

# Session data naming the guest a session's try-ons belong to: a random id given
# at the guest's first try-on. The session's own key changes each time the guest
# starts a try-on (see guest_job_started), and on sign-in, but its data is kept,
# so this keeps naming the guest's try-ons.
GUEST_SESSION_KEY = "django_tryon_guest_session"


def new_guest_id():
    """A guest's id: 32 random characters, as long as a database session's key.

    Not the session's key: a signed cookie session's key is its signed data,
    the same for every new guest within one second, and longer than the
    column that holds it.
    """
    return secrets.token_urlsafe(24)


def owner_for(request, *, create_session=False):
    """The :class:`~django_tryon.shopper.Owner` of ``request``: its signed-in user, or
    else the guest its session names. ``create_session`` makes a guest of a session
    that names none (its cookie goes out with the response), so the guest can find
    the job again."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Owner(user_id=user.pk)
    session = request.session
    guest = session.get(GUEST_SESSION_KEY)
    if create_session and not guest:
        guest = session[GUEST_SESSION_KEY] = new_guest_id()
    # A session from before GUEST_SESSION_KEY was kept is its own guest.
    return Owner(session_key=guest or session.session_key or "")


def guest_job_started(request):
    """Give a guest's session a new key once a try-on of theirs is written.

    A session cookie planted in the shopper's browser beforehand (by a page of
    another site on a sibling domain, say) stops working then, so whoever
    planted it cannot read the try-on. The session's data, and with it the
    guest's try-ons, go to the new key. Signed-in shoppers are left alone:
    their try-ons follow the account, and Django gave their session a new key
    at sign-in.
    """
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return
    request.session.cycle_key()


@receiver(user_logged_in, dispatch_uid="tryon_guest_jobs_on_sign_in")
def carry_guest_jobs_over(sender, request, user, **kwargs):
    """The try-ons a guest started in this browser session become theirs on sign-in,
    and so do the model photos' try-ons they picked.

    A session that belonged to another user is emptied by the sign-in, so it
    carries nothing over.
    """
    session = getattr(request, "session", None)
    guest_session_key = session.pop(GUEST_SESSION_KEY, None) if session is not None else None
    if guest_session_key:
        # updated_at is left alone: a worker recording one of these jobs at this
        # moment tells its own write by that stamp.
        guest = Owner(session_key=guest_session_key)
        guest.jobs().update(user_id=user.pk, session_key="")
        carry_shares_over(guest, user.pk)
