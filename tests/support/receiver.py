"""A shop's webhook endpoint on loopback, for the sandbox's deliveries."""

import threading
import time

from tests.support.loopback import LoopbackServer, QuietHandler


class Receiver:
    """A shop's webhook endpoint on loopback: records each delivery, answers as told."""

    def __init__(self, statuses=()):
        self.deliveries = []  # (path, headers, body)
        self.statuses = list(statuses)  # the next answers' statuses (then 200)
        self.arrived = threading.Event()
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.deliveries.append((self.path, dict(self.headers), body))
                code = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.arrived.set()

        self._server = LoopbackServer(Handler).start()
        self.url = self._server.url + "/tryon/callbacks/fashn/secret/"

    def wait_for(self, count, timeout=10):
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return len(self.deliveries) >= count

    def stop(self):
        self._server.stop()
