"""Counts of everything the sandbox received and did, for tests to assert on.

``tasks_by_person`` counts created tasks per SHA-256 of the person image, so a
test can assert that no photo was submitted twice.
"""

import threading
from collections import Counter


class Counters:
    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        with self._lock:
            self.requests: Counter[str] = Counter()  # every request received, by kind
            self.accepted: Counter[str] = Counter()  # answered with success, by kind
            self.errors: Counter[str] = Counter()  # error answers, by provider code
            self.faults: Counter[str] = Counter()  # injected faults, by kind
            self.tasks_by_person: Counter[str] = Counter()
            # Webhook attempts by outcome: sent, accepted (2xx), refused, gave_up.
            self.webhooks: Counter[str] = Counter()
            self.connections = 0  # TCP connections accepted (fewer than requests: keep-alive)

    def connection(self):
        with self._lock:
            self.connections += 1

    def request(self, kind):
        with self._lock:
            self.requests[kind] += 1

    def accept(self, kind):
        with self._lock:
            self.accepted[kind] += 1

    def error(self, code):
        with self._lock:
            self.errors[code] += 1

    def fault(self, kind):
        with self._lock:
            self.faults[kind] += 1

    def webhook(self, outcome):
        with self._lock:
            self.webhooks[outcome] += 1

    def task_created(self, person_digest):
        with self._lock:
            self.tasks_by_person[person_digest] += 1

    def duplicate_submits(self):
        """Person-image digests that became more than one task, with their counts."""
        with self._lock:
            return {digest: n for digest, n in self.tasks_by_person.items() if n > 1}

    def snapshot(self):
        with self._lock:
            return {
                "requests": dict(self.requests),
                "accepted": dict(self.accepted),
                "errors": dict(self.errors),
                "faults": dict(self.faults),
                "tasks_by_person": dict(self.tasks_by_person),
                "webhooks": dict(self.webhooks),
                "connections": self.connections,
            }
