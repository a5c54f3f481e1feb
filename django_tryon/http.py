"""HTTP sessions for provider calls and result downloads."""

from urllib.parse import urlsplit

import requests


class EnvironmentCachingSession(requests.Session):
    """A :class:`requests.Session` that reads the proxy and CA settings of the
    environment once per host, not on every request.

    Requests reads them (``HTTPS_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``,
    ...) by walking ``os.environ`` twice per request, which costs more CPU
    than the rest of a small request. The answer is the same for every request
    to one host, so it is kept, per scheme and host, for the session's life.
    """

    def __init__(self):
        super().__init__()
        self._environment = {}

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
