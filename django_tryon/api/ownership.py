"""Who is asking: the shopper a request speaks for; a guest's try-ons follow them
when they sign in."""

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from ..shopper import Owner

# Session data naming the session key a guest's try-ons were started under.
# Signing in gives the session a new key but keeps its data, so this survives
# the sign-in and tells which try-ons were the guest's.
GUEST_SESSION_KEY = "django_tryon_guest_session"


def owner_for(request, *, create_session=False):
    """The :class:`~django_tryon.shopper.Owner` of ``request``: its signed-in user, or
    else its session. ``create_session`` starts a session for a guest who has none
    (its cookie goes out with the response), so the guest can find the job again."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Owner(user_id=user.pk)
    session = request.session
    if session.session_key is None and create_session:
        session.save()
    if create_session and session.get(GUEST_SESSION_KEY) != session.session_key:
        session[GUEST_SESSION_KEY] = session.session_key
    return Owner(session_key=session.session_key or "")


@receiver(user_logged_in, dispatch_uid="tryon_guest_jobs_on_sign_in")
def carry_guest_jobs_over(sender, request, user, **kwargs):
    """The try-ons a guest started in this browser session become theirs on sign-in.

    A session that belonged to another user is emptied by the sign-in, so it
    carries nothing over.
    """
    session = getattr(request, "session", None)
    guest_session_key = session.pop(GUEST_SESSION_KEY, None) if session is not None else None
    if guest_session_key:
        # updated_at is left alone: a worker recording one of these jobs at this
        # moment tells its own write by that stamp.
        Owner(session_key=guest_session_key).jobs().update(user_id=user.pk, session_key="")
