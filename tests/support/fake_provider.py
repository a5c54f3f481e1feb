"""A scripted provider stand-in: a real HTTP server on loopback for the worker and
contract tests, speaking one protocol of :mod:`tests.support.contract` (AILabAPI by default).

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
from requests.structures import CaseInsensitiveDict

from tests.support import contract
from tests.support.loopback import LoopbackServer, QuietHandler

DROP = "drop"  # close the connection without an answer


def result_png(color=(10, 200, 90), size=(300, 600)):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


class FakeProvider:
    """Scripted answers are ``(status, payload)`` or ``(status, payload, headers)``,
    the payload a JSON value or raw ``bytes``; or :data:`DROP`; or ``("done", url)``
    for a query (``url`` ``None``: a result on this server)."""

    def __init__(self, protocol=contract.AILAB):
        self.protocol = protocol
        self.submits = []  # (headers, body bytes) of every submit
        self.submit_urls = []  # the path and query string of every submit
        self.queries = []  # task ids queried
        self.downloads = []  # paths of result downloads
        self.others = []  # (method, path, headers) of every other request
        self.results = []  # task ids whose result was asked for (fal)
        self.cancels = []  # task ids asked to be canceled (fal)
        self.token_requests = []  # form bodies sent to the token endpoint (Vertex)
        self.jwks_fetches = 0  # fetches of the key set deliveries are signed with (fal)
        self.cancel_answer = (202, {"status": "CANCELLATION_REQUESTED"})
        #: Set by a test to hold every cancel until it is set (an Event).
        self.cancel_gate = None
        self._pending_results = {}  # task id -> the next answer of its result GET
        self._held_submits = 0
        self.release_submits = threading.Event()
        self._submit_script = deque()
        self._query_script = {}
        self._task_ids = itertools.count(1)
        self.result_body = result_png()
        self.credits = 1000  # the balance a credits query answers
        self.lock = threading.Lock()
        provider = self

        class Handler(QuietHandler):
            def do_POST(self):
                self._route("POST")

            def do_GET(self):
                self._route("GET")

            def do_PUT(self):
                self._route("PUT")

            def _route(self, method):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                kind, task_id = provider.protocol.route(method, parts.path, parse_qs(parts.query))
                if kind == "submit":
                    with provider.lock:
                        provider.submits.append((CaseInsensitiveDict(self.headers), body))
                        provider.submit_urls.append(self.path)
                        answer = provider._next_submit()
                        held = provider._held_submits > 0
                        provider._held_submits -= held
                    if held:  # a slow provider: answered once the test releases it
                        provider.release_submits.wait(60)
                    return self._answer(answer)
                if kind == "query":
                    with provider.lock:
                        provider.queries.append(task_id)
                        answer = provider._next_query(task_id, self._base())
                    return self._answer(answer)
                if kind == "credits":
                    return self._answer(provider.protocol.credits(provider.credits))
                if kind == "result":
                    with provider.lock:
                        provider.results.append(task_id)
                        answer = provider._pending_results.pop(task_id, None)
                    return self._answer(answer or provider.protocol.not_found())
                if kind == "cancel":
                    with provider.lock:
                        provider.cancels.append(task_id)
                    if provider.cancel_gate is not None:
                        provider.cancel_gate.wait(30)
                    return self._answer(provider.cancel_answer)
                if kind == "jwks":
                    with provider.lock:
                        provider.jwks_fetches += 1
                    return self._answer((200, provider.protocol.signer.jwks()))
                if kind == "token":
                    with provider.lock:
                        provider.token_requests.append(parse_qs(body.decode()))
                    return self._answer(provider.token_answer())
                if method == "GET" and parts.path.startswith("/results/"):
                    with provider.lock:
                        provider.downloads.append(parts.path)
                    return self._send(200, provider.result_body, "image/png")
                with provider.lock:
                    provider.others.append((method, self.path, dict(self.headers)))
                self._answer(provider.protocol.not_found())

            def _base(self):
                return f"http://{self.headers['Host']}"

            def _answer(self, answer):
                if answer == DROP:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                status, payload, *rest = answer
                headers = rest[0] if rest else {}
                if isinstance(payload, bytes):
                    return self._send(status, payload, "application/json", headers)
                self._send(status, json.dumps(payload).encode(), "application/json", headers)

            def _send(self, status, body, content_type, headers=None):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        self._loopback = LoopbackServer(Handler)
        self.server, self.url = self._loopback.server, self._loopback.url

    def start(self):
        self._loopback.start()
        return self

    def stop(self):
        self.release_submits.set()  # nothing held past the test
        if self.cancel_gate is not None:
            self.cancel_gate.set()
        self._loopback.stop()

    # Scripting ----------------------------------------------------------

    def script_submit(self, *answers):
        """Queue answers to the next submits."""
        self._submit_script.extend(answers)

    def hold_submits(self, count=1):
        """Answer the next ``count`` submits only once ``release_submits`` is set."""
        self._held_submits += count

    def script_query(self, task_id, *answers):
        """Queue answers to the next queries of ``task_id``."""
        self._query_script.setdefault(task_id, deque()).extend(answers)

    def _next_submit(self):
        if self._submit_script:
            return self._submit_script.popleft()
        return self.protocol.submitted(f"task-{next(self._task_ids)}")

    def _next_query(self, task_id, base):
        script = self._query_script.get(task_id)
        answer = script.popleft() if script else ("done", None)
        if isinstance(answer, tuple) and answer[0] == "done":
            answer = self.protocol.done(task_id, answer[1] or f"{base}/results/{task_id}.png")
        if isinstance(answer, contract.ThenResult):  # fal: the result is a call of its own
            self._pending_results[task_id] = answer.result
            return answer.status
        return answer

    def token_answer(self):
        """What Google's token endpoint answers a service account's signed assertion."""
        return 200, {
            "access_token": contract.VERTEX_ACCESS_TOKEN,
            "expires_in": 3600,
            "token_type": "Bearer",
        }
