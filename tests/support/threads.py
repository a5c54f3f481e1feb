"""Threads in a test: a pass on another thread sharing the test's database connection,
and waiting for a condition with a deadline."""

import threading
import time

from django.db import connections


def in_thread(function):
    """Run ``function`` on a thread that shares this test's database connection (the
    test's rows are visible to it, on SQLite in memory as on PostgreSQL)."""
    connection = connections["default"]
    connection.inc_thread_sharing()
    outcome = {}

    def target():
        connections["default"] = connection
        try:
            outcome["value"] = function()
        except BaseException as err:  # handed to the test
            outcome["error"] = err

    thread = threading.Thread(target=target)
    thread.start()

    def result(timeout):
        thread.join(timeout)
        connection.dec_thread_sharing()
        assert not thread.is_alive(), "the worker's pass did not end"
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    return result


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what} after {timeout} s"
        time.sleep(0.05)
