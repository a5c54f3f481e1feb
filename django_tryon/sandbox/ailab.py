"""AILabAPI's protocol as the sandbox server speaks it (the default, ``--protocol ailab``).

The wire format itself (paths, answers, error codes) is in
:mod:`~django_tryon.sandbox.protocol`; reading a submit in
:mod:`~django_tryon.sandbox.submission`.
"""

from . import protocol
from .submission import read_submission


class AILabWire:
    """AILabAPI's protocol, as the sandbox server speaks it (see ``FashnWire`` for FASHN's).

    A wire says which path is which request, where the key is, how a submit
    reads, and how each answer and error looks; the server, the tasks and the
    faults are the same for every protocol. Errors are raised anywhere as
    :class:`ApiError` with this protocol's codes; other wires translate them.
    """

    name = "ailab"
    #: A photo without a person is refused at submit (422), not found at run time.
    refuses_photos_at_submit = True
    #: The error a task without a person ends with: none, it is refused before.
    no_person = ("", "")

    def kind(self, method, path):
        """``"submit"``, ``"query"``, ``"credits"``, or ``None`` for another path."""
        if path == protocol.SUBMIT_PATH and method == "POST":
            return "submit"
        if path == protocol.QUERY_PATH and method == "GET":
            return "query"
        if path == protocol.CREDITS_PATH and method == "GET":
            return "credits"
        return None

    def api_key(self, headers):
        return headers.get(protocol.API_KEY_HEADER, "")

    def read_submission(self, headers, query, body, *, decode, path=""):
        return read_submission(headers.get("Content-Type", ""), body, decode=decode)

    def task_id(self, path, query):
        return query.get("task_id", [""])[0]

    def submit_answer(self, request_id, task):
        return protocol.submit_answer(request_id, task.id)

    def query_answer(self, request_id, task, status, url, now):
        return protocol.query_answer(request_id, status, url)

    def credits_answer(self, request_id, credits):
        return protocol.credits_answer(request_id, credits)

    def error(self, error, request_id):
        """``(HTTP status, answer, the code counted)`` of ``error``."""
        return error.status, protocol.error_answer(request_id, error), error.code
