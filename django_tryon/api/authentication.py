"""Session authentication that checks CSRF for guests as well as signed-in users.

DRF's ``SessionAuthentication`` checks the CSRF token only when a user is
signed in. A guest's session owns jobs too, so a forged cross-site request
could start or erase a guest's try-ons: here every unsafe request is checked.
"""

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication


class CSRFFailed(exceptions.PermissionDenied):
    default_detail = _(
        "The security token of this page is missing or out of date. Reload the page and try again."
    )
    default_code = "csrf_failed"


class ShopperSessionAuthentication(SessionAuthentication):
    def authenticate(self, request):
        self.enforce_csrf(request)
        user = getattr(request._request, "user", None)
        if not user or not user.is_active or not user.is_authenticated:
            return None
        return (user, None)

    def enforce_csrf(self, request):
        try:
            super().enforce_csrf(request)
        except exceptions.PermissionDenied as err:
            raise CSRFFailed() from err
