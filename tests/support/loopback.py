"""A real HTTP server on 127.0.0.1 for tests: quiet, HTTP/1.1, a thread per connection."""

import threading
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
