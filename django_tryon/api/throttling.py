"""The per-shopper rate limit on starting and erasing try-ons."""

from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle

from ..addresses import client_address, client_group
from ..conf import tryon_settings


class ShopperRateThrottle(SimpleRateThrottle):
    """``THROTTLE_RATE`` (e.g. ``"10/min"``; ``None`` turns it off) per signed-in user,
    else per client address (see :mod:`django_tryon.addresses`).

    Guests are not counted by session: a client gets a new session by sending
    no cookie, as often as it likes. Nor by ``X-Forwarded-For`` unless DRF's
    ``NUM_PROXIES`` says the shop's own proxies wrote it.

    Reads are not throttled: the browser polls a running job every few seconds.
    """

    scope = "tryon_shopper"

    def get_rate(self):
        return tryon_settings.THROTTLE_RATE

    def allow_request(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)

    def get_ident(self, request):
        return client_group(client_address(request))

    def get_cache_key(self, request, view):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            ident = f"user:{user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
