"""Smoke test of ``make demo``: start it, try a garment on as a shopper would, stop it.

    python scripts/demo_smoke.py            # runs `make demo`
    python scripts/demo_smoke.py --no-make  # runs scripts/demo.py directly

The demo runs on free ports with a throw-away database and media folder. The
shopper's steps: open the catalogue and a product page, take a sample photo
from the page, send it with consent through the shopper API, poll until the
picture is ready, fetch it. With webhooks (the default on FASHN) the sandbox's
delivery must have reached the shop. Exits 0 when the picture arrived and the
demo then stopped cleanly; prints what went wrong otherwise.
"""

import argparse
import io
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urljoin

import requests
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


class SmokeError(AssertionError):
    pass


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_demo(command, workdir):
    """Start the demo on free ports in ``workdir``; return ``(process, shop_url, output)``."""
    web_port, sandbox_port = free_port(), free_port()
    env = {
        **os.environ,
        "DEMO_PORT": str(web_port),
        "TRYON_SANDBOX_PORT": str(sandbox_port),
        "TRYON_SANDBOX_PROCESSING_TIME": "1",
        "TRYON_DEMO_DB": str(Path(workdir) / "db.sqlite3"),
        "TRYON_DEMO_MEDIA": str(Path(workdir) / "media"),
    }
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = []
    ready = threading.Event()

    def read():
        for line in process.stdout:
            output.append(line)
            if line.strip().startswith("Shop:"):
                ready.set()

    # Kept on the process: its last lines are still being read when it has exited.
    process.reader = threading.Thread(target=read, daemon=True)
    process.reader.start()
    if not ready.wait(timeout=600):
        stop_demo(process)
        raise SmokeError("The demo did not start:\n" + "".join(output[-40:]))
    return process, f"http://127.0.0.1:{web_port}/", output


def stop_demo(process, timeout=60):
    """Ctrl-C to the demo's process group; return its exit code."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise SmokeError("The demo did not stop within a minute of Ctrl-C.") from None
    # What it printed last (that it stopped its processes) may still be in the pipe:
    # read to the end before anyone looks at the output.
    process.reader.join(timeout=30)
    return process.returncode


def try_on(shop_url, timeout=120):
    """A shopper's try-on through the shop's pages and API; return the job JSON."""
    with requests.Session() as browser:
        catalogue = browser.get(shop_url, timeout=30)
        _expect(catalogue.status_code == 200, f"catalogue answered {catalogue.status_code}")
        links = re.findall(r'href="(/products/[\w-]+/)"', catalogue.text)
        _expect(links, "the catalogue lists no products")
        page = browser.get(urljoin(shop_url, links[0]), timeout=30)
        _expect(page.status_code == 200, f"product page answered {page.status_code}")
        garment = re.search(r'data-garment-id="(\d+)"', page.text)
        _expect(garment, "the product page has no try-on button")
        sample = re.search(r'href="(/sample-photos/[\w-]+\.jpg)"', page.text)
        _expect(sample, "the product page offers no sample photo")
        photo = browser.get(urljoin(shop_url, sample.group(1)), timeout=30)
        _expect(photo.headers.get("Content-Type") == "image/jpeg", "the sample is no JPEG")
        browser.get(urljoin(shop_url, "/tryon/api/garments/"), timeout=30)  # the CSRF cookie
        created = browser.post(
            urljoin(shop_url, "/tryon/api/jobs/"),
            data={"garment": garment.group(1), "consent": "true"},
            files={"person_image": ("me.jpg", photo.content, "image/jpeg")},
            headers={"X-CSRFToken": browser.cookies.get("csrftoken", ""), "Referer": shop_url},
            timeout=30,
        )
        _expect(
            created.status_code in (200, 201), f"POST job: {created.status_code} {created.text}"
        )
        job = created.json()
        deadline = time.monotonic() + timeout
        while job["status"] not in ("succeeded", "failed", "expired", "canceled"):
            _expect(time.monotonic() < deadline, f"job still {job['status']} after {timeout}s")
            time.sleep(0.5)
            job = browser.get(urljoin(shop_url, f"/tryon/api/jobs/{job['id']}/"), timeout=30).json()
        _expect(job["status"] == "succeeded", f"the try-on ended {job['status']}: {job['error']}")
        picture = browser.get(urljoin(shop_url, job["result_url"]), timeout=30)
        _expect(picture.status_code == 200, f"the result answered {picture.status_code}")
        with Image.open(io.BytesIO(picture.content)) as image:
            image.verify()
        return job


def _expect(condition, message):
    if not condition:
        raise SmokeError(message)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-make", action="store_true", help="Run scripts/demo.py directly.")
    args = parser.parse_args(argv)
    command = [sys.executable, "scripts/demo.py"] if args.no_make else ["make", "demo"]
    with tempfile.TemporaryDirectory(prefix="tryon-demo-smoke-") as workdir:
        process, shop_url, output = start_demo(command, workdir)
        try:
            job = try_on(shop_url)
        except BaseException:
            stop_demo(process)
            print("".join(output[-60:]), file=sys.stderr)
            raise
        exit_code = stop_demo(process)
        problems = check_stopped(exit_code if args.no_make else None, output)
        problems += check_webhook(output)
        if problems:
            print("".join(output[-60:]), file=sys.stderr)
            print("Demo smoke test failed: " + "; ".join(problems), file=sys.stderr)
            return 1
        print(f"Demo smoke test passed: job {job['id']} succeeded, {job['result_url']}")
        return 0


def check_stopped(exit_code, output):
    """What went wrong while the demo stopped, if anything.

    ``exit_code`` is the runner's, or ``None`` under ``make`` (which reports the
    interrupt of its recipe as a failure of its own: the runner's words count).
    """
    problems = []
    if exit_code not in (0, None):
        problems.append(f"the demo exited with code {exit_code}")
    if not any("Stopped the sandbox, the worker and the web server." in line for line in output):
        problems.append("the demo did not report stopping its processes")
    if any("stopping the demo" in line for line in output):
        problems.append("a process died while the demo ran")
    if any("Traceback" in line for line in output):
        problems.append("a process printed a traceback")
    return problems


def check_webhook(output):
    """On a provider that calls back (the demo's default on FASHN), the result came by
    webhook: the web server logged the sandbox's delivery, answered 200."""
    banner = next((line for line in output if "results:" in line), "")
    if "webhooks" not in banner:
        return []
    if any(re.search(r'"POST /tryon/webhooks/\w+/[^ ]+ HTTP/1\.1" 200', line) for line in output):
        return []
    return ["the demo runs with webhooks, but no webhook was delivered"]


if __name__ == "__main__":
    sys.exit(main())
