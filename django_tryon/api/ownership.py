"""Who is asking: the shopper a request speaks for."""

from ..shopper import Owner


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
    return Owner(session_key=session.session_key or "")
