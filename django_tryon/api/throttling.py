"""The per-shopper rate limit on starting and erasing try-ons."""

from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle

from ..conf import tryon_settings


class ShopperRateThrottle(SimpleRateThrottle):
    """``THROTTLE_RATE`` (e.g. ``"10/min"``; ``None`` turns it off) per signed-in user,
    else per session, else per client address.

    Reads are not throttled: the browser polls a running job every few seconds.
    """

    scope = "tryon_shopper"

    def get_rate(self):
        return tryon_settings.THROTTLE_RATE

    def allow_request(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            ident = f"user:{user.pk}"
        elif request.session.session_key:
            ident = f"session:{request.session.session_key}"
        else:
            # No session yet (or cookies refused): fall back to the address, so
            # dropping the cookie is no way around the limit.
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
