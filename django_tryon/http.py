"""HTTP sessions for provider calls and result downloads."""

import copy
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase
from requests.utils import get_netrc_auth


class _NoAuth(AuthBase):
    """Explicitly no credentials: keeps Requests from looking for a netrc file."""

    def __call__(self, request):
        return request


_NO_AUTH = _NoAuth()


class EnvironmentCachingSession(requests.Session):
    """A :class:`requests.Session` that reads the proxy and CA settings of the
    environment, and the netrc credentials, once per host, not on every request.

    Requests reads them (``HTTPS_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``,
    ...) by walking ``os.environ`` twice per request, and looks for ``~/.netrc``
    and ``~/_netrc`` on disk for every request that has no credentials of its
    own, which together cost more CPU than the rest of a small request. The
    answers are the same for every request to one host, so they are kept, per
    scheme and host, for the session's life.
    """

    def __init__(self):
        super().__init__()
        self._environment = {}
        self._netrc = {}

    def prepare_request(self, request):
        if self.trust_env and not request.auth and not self.auth:
            parts = urlsplit(request.url)
            key = (parts.scheme, parts.netloc)
            if key not in self._netrc:
                self._netrc[key] = get_netrc_auth(request.url)
            request = copy.copy(request)  # the caller's request stays as it was
            request.auth = self._netrc[key] or _NO_AUTH
        return super().prepare_request(request)

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        if proxies or not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, stream, verify, cert)
        settings = self._environment.get(key)
        if settings is None:
            settings = self._environment[key] = super().merge_environment_settings(
                url, proxies, stream, verify, cert
            )
        return {**settings, "proxies": dict(settings["proxies"])}
