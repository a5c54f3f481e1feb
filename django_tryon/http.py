"""HTTP sessions for provider calls and result downloads."""

import copy
from urllib.parse import urlencode, urlsplit

import requests
from requests.auth import AuthBase
from requests.utils import get_netrc_auth


class _NoAuth(AuthBase):
    """Explicitly no credentials: keeps Requests from looking for a netrc file."""

    def __call__(self, request):
        return request


_NO_AUTH = _NoAuth()

# URLs whose prepared form a session keeps (see EnvironmentCachingSession.send_direct).
PREPARED_URLS_KEPT = 64


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
        self._templates = {}
        self._prepared_urls = {}

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

    def send_direct(self, method, url, *, params=None, data=None, files=None, **kwargs):
        """``self.request(method, url, ..., allow_redirects=False)``, for less CPU.

        Requests merges the session's headers, cookies and credentials into every
        request it prepares, which costs about a quarter of a small request's CPU.
        Here that merge is done once per method and origin (scheme and host),
        and each request is a copy of it with its own URL and body: the same
        request on the wire. Redirects are not followed (the caller sees the
        3xx answer). A session that has received cookies takes the usual path,
        so they are sent back as Requests would send them.

        ``url`` is prepared as Requests prepares it (IDNA hosts, quoting), once
        per URL for a provider's few endpoints; ``params`` are appended to it,
        encoded. ``kwargs`` are those of :meth:`requests.Session.send`
        (``timeout``, ``stream``, ...).
        """
        if self.cookies:
            return self.request(
                method,
                url,
                params=params,
                data=data,
                files=files,
                allow_redirects=False,
                **kwargs,
            )
        parts = urlsplit(url)
        key = (method, parts.scheme, parts.netloc)
        template = self._templates.get(key)
        if template is None:
            origin = f"{parts.scheme}://{parts.netloc}/"
            template = self._templates[key] = self.prepare_request(requests.Request(method, origin))
        prepared = template.copy()
        prepared.url = self._prepared_url(prepared, url)
        if params:
            separator = "&" if "?" in prepared.url else "?"
            prepared.url += separator + urlencode(params, doseq=True)
        if data is not None or files is not None:
            prepared.prepare_body(data, files)
        settings = self.merge_environment_settings(
            prepared.url, {}, kwargs.pop("stream", None), None, None
        )
        return self.send(prepared, allow_redirects=False, **settings, **kwargs)

    def _prepared_url(self, prepared, url):
        cached = self._prepared_urls.get(url)
        if cached is None:
            prepared.prepare_url(url, None)
            cached = prepared.url
            # A provider's endpoints are few; result URLs are each used once.
            if len(self._prepared_urls) < PREPARED_URLS_KEPT:
                self._prepared_urls[url] = cached
        return cached
