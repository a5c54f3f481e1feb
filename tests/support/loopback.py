"""A real HTTP server on 127.0.0.1 for tests: quiet, HTTP/1.1, a thread per connection."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the provider and CDNs answer

    def log_message(self, *args):
        pass  # the test's own assertions say what matters


class LoopbackServer:
    """Serves ``handler`` on a free port of 127.0.0.1 once :meth:`start` is called."""

    def __init__(self, handler):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class DrippingServer:
    """A loopback server answering every request with ``head`` (the status line and
    headers) and ``body``, one part sent a byte every ``interval`` seconds: the headers
    (``phase="headers"``) or the body. Each byte comes well within any read timeout;
    the whole takes far longer than any deadline. ``requests`` counts what it was sent."""

    def __init__(self, head, body, phase, interval=0.2):
        self.requests = 0
        served = self

        class Handler(QuietHandler):
            def answer(self):
                served.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    if phase == "headers":
                        _drip(self.wfile, head, interval)
                        self.wfile.write(b"\r\n")
                    else:
                        self.wfile.write(head + b"\r\n")
                    _drip(self.wfile, body, interval)
                except OSError:
                    pass  # cut off by the client: what the tests want
                self.close_connection = True

            do_GET = do_POST = do_PUT = answer

        self._loopback = LoopbackServer(Handler).start()
        self.url = self._loopback.url

    def stop(self):
        self._loopback.stop()


def _drip(stream, data, interval):
    for byte in data:
        stream.write(bytes([byte]))
        stream.flush()
        time.sleep(interval)


class HeldServer:
    """A loopback server answering every ``GET`` with ``body`` (JSON), at once while
    :attr:`holding` is false; while it is true, each request is read and held, its
    answer sent only when :meth:`release` is called (a host that accepts and never
    answers, for as long as the test likes). ``requests`` counts what it was sent."""

    def __init__(self, body):
        self.requests = 0
        self.holding = False
        self._released = threading.Event()
        served = self

        class Handler(QuietHandler):
            def do_GET(self):
                served.requests += 1
                if served.holding:
                    served._released.wait(60)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

        self._loopback = LoopbackServer(Handler).start()
        self.url = self._loopback.url

    def release(self):
        self._released.set()

    def stop(self):
        self.release()
        self._loopback.stop()
