"""Total deadlines on HTTP exchanges, however steadily their bytes arrive.

A read timeout bounds each wait for the next bytes: a peer that sends one byte
just within it holds a request for as long as it likes, headers or body. Under
:func:`deadline`, every connection the thread makes or uses again (those of
:class:`~django_tryon.http.PeerCheckingAdapter`) is registered, and shut down
when the time is up: the read waiting on it fails at once.

Deadlines nest: a connection made under an inner one (a provider's token,
fetched during a call) is held to every deadline around it, so the inner one
can only be shorter.

One watchdog thread serves every deadline of the process: starting and ending
one costs a heap push and a flag, not a thread.

A name lookup has no socket to shut: :func:`lookup` runs it on a thread of its
own (at most :data:`LOOKUP_THREADS` at once) and stops waiting for it when the
deadline passes.
"""

import contextlib
import heapq
import ipaddress
import itertools
import socket
import threading
import time

#: Threads that run name lookups under a deadline, at most. A lookup cannot be
#: interrupted, only left behind (the resolver's own timeouts end it, within
#: half a minute); a lookup that finds every thread busy waits within its own
#: deadline. Far more than a worker's calls in flight: hung lookups of one host
#: do not hold up the others'.
LOOKUP_THREADS = 64


class Deadline:
    """One running deadline. ``expired`` is set once it passed and its sockets
    were shut; a failure of the exchange then was caused by it."""

    def __init__(self, seconds, outer=None):
        self.seconds = seconds
        self.outer = outer  # the deadline this one runs inside, if any
        self.at = time.monotonic() + seconds
        self.expired = False
        self.ended = False  # the block ended first: nothing to shut
        self._sockets = []
        self._lock = threading.Lock()

    @property
    def cut_off(self):
        """Whether this deadline, or one it runs inside, has expired: a failure of
        the exchange then was caused by one of them."""
        running = self
        while running is not None:
            if running.expired:
                return True
            running = running.outer
        return False

    def watch(self, sock):
        with self._lock:
            if not self.expired:
                self._sockets.append(sock)
                return
        _shut(sock)

    def expire(self):
        with self._lock:
            if self.ended:
                return
            self.expired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut(sock)

    def end(self):
        with self._lock:
            self.ended = True
            self._sockets = []


class _Watchdog:
    """The thread that expires deadlines when their time comes, started on first use."""

    def __init__(self):
        self._due = []  # (at, order, Deadline), a heap
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread = None

    def add(self, running):
        with self._wake:
            heapq.heappush(self._due, (running.at, next(self._order), running))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="tryon-deadlines", daemon=True
                )
                self._thread.start()
            if self._due[0][2] is running:  # the new first: sleep less
                self._wake.notify()

    def _run(self):
        while True:
            with self._wake:
                while self._due and self._due[0][2].ended:
                    heapq.heappop(self._due)  # ended in time: forget it
                if not self._due:
                    self._wake.wait()
                    continue
                wait = self._due[0][0] - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                running = heapq.heappop(self._due)[2]
            running.expire()  # outside the lock: shutting sockets may take a moment


_watchdog = _Watchdog()
_running = threading.local()


@contextlib.contextmanager
def deadline(seconds):
    """Hold the HTTP exchanges this thread makes in the block to ``seconds`` in all.

    Yields the :class:`Deadline`, whose ``expired`` tells a failure it caused.
    """
    outer = getattr(_running, "deadline", None)
    running = Deadline(seconds, outer)
    _running.deadline = running
    _watchdog.add(running)
    try:
        yield running
    finally:
        running.end()
        _running.deadline = outer


def lookup(resolver, *args, **kwargs):
    """``resolver(*args, **kwargs)`` (``socket.getaddrinfo``'s signature), given up
    when this thread's running deadline passes first: the deadline is then expired,
    as for a socket, and ``socket.gaierror`` (``EAI_AGAIN``) raised. Without a running
    deadline the resolver is called here, as it is.

    A name server that never answers (whoever runs the result host's domain runs
    its name server) would otherwise hold the exchange for the resolver's own
    timeouts, several times its deadline with a few name servers configured.
    """
    running = getattr(_running, "deadline", None)
    if running is None or _is_address(args[0] if args else kwargs.get("host")):
        return resolver(*args, **kwargs)  # an address asks no name server
    chain = []
    while running is not None:
        chain.append(running)
        running = running.outer
    at = min(each.at for each in chain)
    outcome = {}
    done = threading.Event()

    def run():
        try:
            outcome["addresses"] = resolver(*args, **kwargs)
        except BaseException as err:  # handed to the waiting thread, as it is
            outcome["error"] = err
        finally:
            _lookup_slots.release()
            done.set()

    if _lookup_slots.acquire(timeout=max(0.0, at - time.monotonic())):
        try:
            # A daemon thread: one left behind never holds the process at its exit.
            threading.Thread(target=run, name="tryon-lookup", daemon=True).start()
        except BaseException:
            _lookup_slots.release()
            raise
        if done.wait(max(0.0, at - time.monotonic())):
            if "error" in outcome:
                raise outcome["error"]
            return outcome["addresses"]
    now = time.monotonic()
    for each in chain:
        if each.at <= now:
            each.expire()
    raise socket.gaierror(socket.EAI_AGAIN, "the name lookup did not end within the deadline")


_lookup_slots = threading.BoundedSemaphore(LOOKUP_THREADS)


def _is_address(host):
    if not isinstance(host, str):
        return False
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return True


def watch_socket(sock):
    """Register ``sock`` with this thread's running deadlines, if there are any."""
    running = getattr(_running, "deadline", None)
    while running is not None and sock is not None:
        running.watch(sock)
        running = running.outer


def _shut(sock):
    # socket.socket's own shutdown, also for a TLS socket: it wakes a read blocked
    # in another thread without touching the TLS object that read is using.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
