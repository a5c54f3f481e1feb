"""The result-URL policy: where a result may be fetched from (the URL checked, then
the address connected to), and what a result must be to be kept."""

import socket
import threading

import pytest

from django_tryon.results import ResultFetcher, ResultURLForbidden
from django_tryon.worker import Worker
from tests.support.fake_provider import FakeProvider, result_png
from tests.support.jobs import refreshed
from tests.support.media import stored_files


@pytest.mark.parametrize(
    "url_template",
    [
        "http://localhost:{port}/stolen.png",  # plain http to an untrusted host name
        "https://127.0.0.2:{port}/stolen.png",  # https, but a loopback address
        "https://169.254.169.254/latest/meta-data",  # link-local cloud metadata
        "ftp://127.0.0.1:{port}/x.png",
    ],
)
def test_result_url_on_a_forbidden_host_fails_without_a_request(
    worker, provider, make_job, url_template, media_root
):
    bystander = FakeProvider().start()
    try:
        port = bystander.server.server_address[1]
        job = make_job()
        provider.script_query("task-1", ("done", url_template.format(port=port)))
        worker.run_pass()
        worker.run_pass()
        job = refreshed(job)
        assert job.status == "failed"
        assert job.error_code == "result_unavailable"
        assert bystander.downloads == []
        assert provider.downloads == []
        assert not any("results" in name for name in stored_files(media_root))
    finally:
        bystander.stop()


def test_a_result_host_that_resolves_elsewhere_once_connecting_is_refused(
    worker, provider, make_job, media_root, caplog
):
    # DNS rebinding: the name looks public when the URL is checked, and leads
    # to loopback when the connection resolves it again.
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    port = listener.getsockname()[1]
    accepted = []  # every connection made to the listener
    done = threading.Event()

    def accept():
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(connection)

    listening = threading.Thread(target=accept)
    listening.start()
    answers = iter(
        [
            [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))],
            [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))],
        ]
    )
    worker.fetcher.resolver = lambda host, port, *args, **kwargs: next(answers)
    try:
        job = make_job()
        provider.script_query("task-1", ("done", f"https://results.example.com:{port}/stolen.png"))
        worker.run_pass()
        worker.run_pass()
    finally:
        done.set()
        listening.join(timeout=15)
        listener.close()
    job = refreshed(job)
    assert (job.status, job.error_code) == ("failed", "result_unavailable")
    # The log tells staff why (the shopper's message stays the general one).
    assert (
        "results.example.com resolves, when connecting, to a non-public address (127.0.0.1)"
        in caplog.text
    )
    # The address was refused before a connection was made to it: none was.
    assert accepted == []
    assert not any("results" in name for name in stored_files(media_root))


@pytest.mark.parametrize(
    "host, address, allowed",
    [
        ("cdn.example", "93.184.216.34", True),
        ("cdn.example", "2606:2800:220:1::1", True),
        ("cdn.example", "127.0.0.1", False),
        ("cdn.example", "10.1.2.3", False),
        ("cdn.example", "::ffff:127.0.0.1", False),  # loopback, spelled as IPv6
        ("cdn.example", "fe80::1%eth0", False),  # link-local, with its interface
        ("cdn.example", "224.0.0.1", False),
        # IPv6 addresses that stand for an IPv4 one are judged by it:
        ("cdn.example", "64:ff9b::5db8:d822", True),  # NAT64 to 93.184.216.34
        ("cdn.example", "64:ff9b::a01:203", False),  # NAT64 to 10.1.2.3
        ("cdn.example", "2002:5db8:d822::1", True),  # 6to4 from 93.184.216.34
        ("cdn.example", "2002:a01:203::1", False),  # 6to4 from 10.1.2.3
        ("cdn.example", "::ffff:0:7f00:1", False),  # IPv4-translated 127.0.0.1
        # Ranges never a public host's, though Python 3.11 calls them global:
        ("cdn.example", "64:ff9b:1::5db8:d822", False),  # NAT64 for a network's own use
        ("cdn.example", "::5db8:d822", False),  # IPv4-compatible (deprecated)
        ("cdn.example", "fec0::1", False),  # site-local (deprecated)
        ("Results.Internal", "10.1.2.3", True),  # listed in RESULT_HOSTS
        ("[fd00::5]", "fd00::5", True),  # listed, and spelled as in a URL
        ("127.0.0.1", "127.0.0.1", True),  # BASE_URL's host
    ],
)
def test_a_connection_goes_on_only_at_an_address_the_host_may_have(host, address, allowed):
    fetcher = ResultFetcher(
        base_url="http://127.0.0.1:8000/api",
        extra_hosts=["results.internal", "fd00::5"],
        max_bytes=1000,
        timeout=1,
    )
    if allowed:
        fetcher.check_peer(host, address)
    else:
        with pytest.raises(ResultURLForbidden, match="when connecting, to a non-public address"):
            fetcher.check_peer(host, address)


def test_result_host_listed_in_settings_is_allowed(tryon, settings, provider, make_job):
    bystander = FakeProvider().start()
    try:
        settings.TRYON = {**tryon, "RESULT_HOSTS": ["localhost"]}
        port = bystander.server.server_address[1]
        job = make_job()
        provider.script_query("task-1", ("done", f"http://localhost:{port}/results/x.png"))
        with Worker(worker_id="w") as worker:
            worker.run_pass()
            worker.run_pass()
        assert refreshed(job).status == "succeeded"
        assert bystander.downloads == ["/results/x.png"]
    finally:
        bystander.stop()


def test_a_result_that_is_not_an_image_retries_then_fails(worker, provider, make_job, media_root):
    provider.result_body = b"<html>not a picture</html>"
    job = make_job()
    for _ in range(4):
        worker.run_pass()
    job = refreshed(job)
    assert job.status == "failed"
    assert job.error_code == "result_unavailable"
    assert len(provider.downloads) == 3
    assert not any("results" in name for name in stored_files(media_root))


def test_an_oversized_result_is_refused(tryon, settings, provider, make_job):
    settings.TRYON = {**tryon, "RESULT_MAX_BYTES": 1000, "MAX_ATTEMPTS": 1}
    provider.result_body = result_png(size=(800, 800)) + b"\0" * 2000
    job = make_job()
    with Worker(worker_id="w") as worker:
        worker.run_pass()
        worker.run_pass()
    assert refreshed(job).error_code == "result_unavailable"
