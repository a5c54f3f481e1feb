"""HTTP sessions for provider calls and result downloads."""

import copy
import socket
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from requests.cookies import extract_cookies_to_jar
from requests.hooks import dispatch_hook
from requests.sessions import preferred_clock
from requests.utils import get_netrc_auth
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError
from urllib3.util.connection import allowed_gai_family

from .deadlines import lookup, watch_socket


class _NoAuth(AuthBase):
    """Explicitly no credentials: keeps Requests from looking for a netrc file."""

    def __call__(self, request):
        return request


_NO_AUTH = _NoAuth()

# URLs whose prepared form a session keeps (see EnvironmentCachingSession.send_direct).
PREPARED_URLS_KEPT = 64


class PoolKeepingAdapter(HTTPAdapter):
    """An :class:`~requests.adapters.HTTPAdapter` that finds an origin's connection
    pool once, not on every request.

    For every request, HTTPAdapter rebuilds the pool's key (parsing the URL,
    and asking the disk whether a CA bundle path is a folder) and looks the
    pool up in its pool manager, which costs about a tenth of a small
    request's CPU. Here the pool found is kept per origin and TLS settings,
    for requests that go through no proxy (those take HTTPAdapter's own way),
    ``pool_connections`` of them at most, as the pool manager keeps, the
    oldest dropped first. A kept pool that has been closed since (by
    :meth:`close`, or by a pool manager that closes the pools it drops) is
    looked up again.

    Every connection it makes or uses again, directly or through a proxy, is
    held to the thread's :func:`~django_tryon.deadlines.deadline` when one is
    running (nothing is done when none is).
    """

    def init_poolmanager(self, *args, **kwargs):
        # Here rather than in __init__: also called when the adapter is unpickled.
        self._pools = {}
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _watched_pools(self.poolmanager)

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not getattr(manager, "_tryon_watched", False):
            manager.pool_classes_by_scheme = _watched_pools(manager)
            manager._tryon_watched = True
        return manager

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        if proxies:
            return super().get_connection_with_tls_context(request, verify, proxies, cert)
        parts = urlsplit(request.url)
        key = (parts.scheme, parts.netloc, verify, cert)
        pool = self._pools.get(key)
        if pool is None or pool.pool is None:  # never found, or closed since
            pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
            self._pools.pop(key, None)
            self._pools[key] = pool
            # As many as the pool manager keeps: the oldest goes first.
            while len(self._pools) > self._pool_connections:
                del self._pools[next(iter(self._pools))]
        return pool

    def request_url(self, request, proxies):
        if not proxies:
            return request.path_url  # what HTTPAdapter answers when no proxy applies
        return super().request_url(request, proxies)

    def close(self):
        self._pools.clear()
        super().close()


class PeerCheckingAdapter(PoolKeepingAdapter):
    """A :class:`PoolKeepingAdapter` whose direct connections go only to addresses
    a check allows: the host is resolved, every address checked, and only then
    is a connection made, to one of those addresses.

    ``check_peer(host, address)`` is called with the URL's host and each
    address it resolved to, and raises to refuse it: no connection is made at
    all, and the exception leaves the request unchanged. Looking up a host's
    addresses before a request is not enough on its own, since the connection
    would resolve the name again, and a name can answer differently the second
    time (DNS rebinding): here the connection goes to the very address checked.
    TLS still verifies the certificate against the URL's host. A connection
    that is kept and reused was checked when made. Connections through a proxy
    reach the proxy, which resolves the name itself: they are not checked.
    """

    # Pickled with the rest.
    __attrs__ = [*PoolKeepingAdapter.__attrs__, "_check_peer", "_resolver"]

    def __init__(self, check_peer, *, resolver=None, **kwargs):
        # Before HTTPAdapter calls init_poolmanager. resolver: getaddrinfo's
        # signature, socket.getaddrinfo by default.
        self._check_peer = check_peer
        self._resolver = resolver
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        # Proxied connections are not checked (the proxy resolves the name); every
        # connection, checked or not, is held to a deadline (PoolKeepingAdapter).
        super().init_poolmanager(*args, **kwargs)
        manager = self.poolmanager
        manager.pool_classes_by_scheme = {
            scheme: _peer_checking_pool(
                pool_class, self._check_peer, self._resolver or socket.getaddrinfo
            )
            for scheme, pool_class in manager.pool_classes_by_scheme.items()
        }


def _peer_checking_pool(pool_class, check_peer, resolver):
    """A subclass of ``pool_class`` (one of :func:`_watched_pools`) whose connections
    go only to addresses ``check_peer`` allows."""

    connection_class = pool_class.ConnectionCls

    class PeerCheckingConnection(connection_class):  # type: ignore[misc, valid-type]
        def _new_conn(self):
            addresses = _resolve(self, resolver)
            for address in addresses:  # every one checked before any is tried
                check_peer(self.host, address)
            # Set by urllib3's host setter, which mypy cannot follow here.
            name: str = self._dns_host  # type: ignore[has-type]
            failure = None
            try:
                for address in addresses:
                    # urllib3 connects to _dns_host; TLS (SNI, the certificate)
                    # still goes by self.host.
                    self._dns_host = address
                    try:
                        return super()._new_conn()
                    except ConnectTimeoutError as err:  # NewConnectionError too
                        failure = err  # the next address, as urllib3 would try it
            finally:
                self._dns_host = name
            assert failure is not None, "getaddrinfo answers at least one address"
            raise failure

    return type(pool_class.__name__, (pool_class,), {"ConnectionCls": PeerCheckingConnection})


def _watched_pools(manager):
    """``manager``'s pool classes by scheme, each held to the thread's deadline."""
    return {
        scheme: _watched_pool(pool_class)
        for scheme, pool_class in manager.pool_classes_by_scheme.items()
    }


def _watched_pool(pool_class):
    """A subclass of ``pool_class`` whose connections are held to the thread's
    :func:`~django_tryon.deadlines.deadline`, if one is running."""
    connection_class = pool_class.ConnectionCls

    class WatchedConnection(connection_class):  # type: ignore[misc, valid-type]
        def _new_conn(self):
            # The bare socket, watched before TLS starts on it: a handshake sent a
            # byte at a time is cut off too.
            sock = super()._new_conn()
            watch_socket(sock)
            return sock

        def request(self, *args, **kwargs):
            watch_socket(self.sock)  # a kept connection, used again
            return super().request(*args, **kwargs)

    return type(pool_class.__name__, (pool_class,), {"ConnectionCls": WatchedConnection})


def _resolve(connection, resolver):
    """The addresses a urllib3 ``connection``'s host resolves to for TCP, in the
    resolver's order, each once; raises ``NameResolutionError`` as urllib3 does."""
    try:
        infos = lookup(
            resolver,
            connection._dns_host,
            connection.port,
            allowed_gai_family(),
            socket.SOCK_STREAM,
        )
    except socket.gaierror as err:
        raise NameResolutionError(connection.host, connection, err) from err
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class EnvironmentCachingSession(requests.Session):
    """A :class:`requests.Session` that reads the proxy and CA settings of the
    environment, and the netrc credentials, once per host, not on every request.

    Requests reads them (``HTTPS_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``,
    ...) by walking ``os.environ`` twice per request, and looks for ``~/.netrc``
    and ``~/_netrc`` on disk for every request that has no credentials of its
    own, which together cost more CPU than the rest of a small request. The
    answers are the same for every request to one host, so they are kept, per
    scheme and host, for the session's life.

    ``adapter`` serves both http and https; by default a
    :class:`PoolKeepingAdapter` with HTTPAdapter's default pool sizes.
    """

    def __init__(self, adapter=None):
        super().__init__()
        adapter = adapter or PoolKeepingAdapter()
        self.mount("https://", adapter)
        self.mount("http://", adapter)
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

    def send_direct(
        self, method, url, *, params=None, data=None, files=None, json=None, headers=None, **kwargs
    ):
        """``self.request(method, url, ..., allow_redirects=False)``, for less CPU.

        Requests merges the session's headers, cookies and credentials into every
        request it prepares, which costs about a quarter of a small request's CPU.
        Here that merge is done once per method and origin (scheme and host),
        and each request is a copy of it with its own URL and body: the same
        request on the wire. Redirects are not followed (the caller sees the
        3xx answer), and the answer comes straight from the adapter, without
        :meth:`send`'s redirect handling. A session that has received cookies
        takes the usual path, so they are sent back as Requests would send them.

        ``url`` is prepared as Requests prepares it (IDNA hosts, quoting), once
        per URL for a provider's few endpoints; ``params`` are appended to it,
        encoded. The body is ``data`` and ``files``, or ``json``, as
        :meth:`requests.Session.request` takes them; ``headers`` are added to the
        session's (credentials that change, such as a token that expires). ``kwargs`` are those of
        :meth:`requests.Session.send` (``timeout``, ``stream``, ...).
        """
        if self.cookies:
            return self.request(
                method,
                url,
                params=params,
                data=data,
                files=files,
                json=json,
                headers=headers,
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
        if headers:
            prepared.headers.update(headers)
        prepared.url = self._prepared_url(prepared, url)
        if params:
            separator = "&" if "?" in prepared.url else "?"
            prepared.url += separator + urlencode(params, doseq=True)
        if data is not None or files is not None or json is not None:
            prepared.prepare_body(data, files, json)
        settings = self.merge_environment_settings(
            prepared.url, {}, kwargs.pop("stream", None), None, None
        )
        return self._send_once(prepared, **settings, **kwargs)

    def _send_once(self, prepared, **kwargs):
        """What :meth:`send` does for a request whose redirects are not followed:
        the adapter's answer, timed, through the hooks, its cookies kept, its
        body read unless streamed (``Response.next`` is not set)."""
        adapter = self.get_adapter(url=prepared.url)
        started = preferred_clock()
        response = adapter.send(prepared, **kwargs)
        response.elapsed = timedelta(seconds=preferred_clock() - started)
        response = dispatch_hook("response", prepared.hooks, response, **kwargs)
        # Without these headers the cookie jar would parse the answer for nothing.
        if "Set-Cookie" in response.headers or "Set-Cookie2" in response.headers:
            extract_cookies_to_jar(self.cookies, prepared, response.raw)
        if not kwargs.get("stream"):
            response.content  # noqa: B018 (reads the body, as Session.send does)
        return response

    @property
    def prepared_url_count(self) -> int:
        """How many URLs' prepared forms are kept: at most ``PREPARED_URLS_KEPT``
        (a provider's few endpoints; result URLs are each used once)."""
        return len(self._prepared_urls)

    def _prepared_url(self, prepared, url):
        cached = self._prepared_urls.get(url)
        if cached is None:
            prepared.prepare_url(url, None)
            cached = prepared.url
            # A provider's endpoints are few; result URLs are each used once.
            if len(self._prepared_urls) < PREPARED_URLS_KEPT:
                self._prepared_urls[url] = cached
        return cached
