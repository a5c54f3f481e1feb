"""A scripted AILabAPI stand-in: a real HTTP server on loopback for the worker tests.

Each test says what the next answers are (``script_submit``, ``script_query``);
unscripted calls get the happy path. The server records every request, so
tests can assert what reached the provider and what did not.
"""

import io
import itertools
import json
import threading
from collections import deque
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from tests import contract
from tests.loopback import LoopbackServer, QuietHandler

DROP = "drop"  # close the connection without an answer


def result_png(color=(10, 200, 90), size=(300, 600)):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


class FakeProvider:
    def __init__(self):
        self.submits = []  # (headers, body bytes) of every submit
        self.queries = []  # task ids queried
        self.downloads = []  # paths of result downloads
        self._submit_script = deque()
        self._query_script = {}
        self._task_ids = itertools.count(1)
        self.result_body = result_png()
        self.lock = threading.Lock()
        provider = self

        class Handler(QuietHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if urlsplit(self.path).path != contract.SUBMIT_PATH:
                    return self._json(404, contract.error_answer(404, "ERROR_AI_NOT_EXISTS"))
                with provider.lock:
                    provider.submits.append((dict(self.headers), body))
                    answer = provider._next_submit()
                self._answer(answer)

            def do_GET(self):
                parts = urlsplit(self.path)
                if parts.path == contract.QUERY_PATH:
                    task_id = parse_qs(parts.query).get("task_id", [""])[0]
                    with provider.lock:
                        provider.queries.append(task_id)
                        answer = provider._next_query(task_id, self._base())
                    return self._answer(answer)
                if parts.path.startswith("/results/"):
                    with provider.lock:
                        provider.downloads.append(parts.path)
                    return self._send(200, provider.result_body, "image/png")
                self._json(404, contract.error_answer(404, "ERROR_AI_NOT_EXISTS"))

            def _base(self):
                return f"http://{self.headers['Host']}"

            def _answer(self, answer):
                if answer == DROP:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                status, payload = answer
                self._json(status, payload)

            def _json(self, status, payload):
                self._send(status, json.dumps(payload).encode(), "application/json")

            def _send(self, status, body, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._loopback = LoopbackServer(Handler)
        self.server, self.url = self._loopback.server, self._loopback.url

    def start(self):
        self._loopback.start()
        return self

    def stop(self):
        self._loopback.stop()

    # Scripting ----------------------------------------------------------

    def script_submit(self, *answers):
        """Queue answers to the next submits: (status, json) or DROP."""
        self._submit_script.extend(answers)

    def script_query(self, task_id, *answers):
        """Queue answers to the next queries of ``task_id``.

        ``("done", None)`` answers success with a result URL on this server.
        """
        self._query_script.setdefault(task_id, deque()).extend(answers)

    def _next_submit(self):
        if self._submit_script:
            return self._submit_script.popleft()
        return (200, contract.submit_answer(task_id=f"task-{next(self._task_ids)}"))

    def _next_query(self, task_id, base):
        script = self._query_script.get(task_id)
        answer = script.popleft() if script else ("done", None)
        if answer[0] == "done":
            url = answer[1] or f"{base}/results/{task_id}.png"
            return (200, contract.query_answer(2, url))
        return answer
