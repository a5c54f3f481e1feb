"""Fuzz the shopper API from its OpenAPI schema, against the example shop on loopback.

    python scripts/fuzz_api.py                       # about two minutes
    python scripts/fuzz_api.py --max-time 30 --max-examples 20

Needs the `schema` and `fuzz` extras (drf-spectacular, schemathesis). Steps:

1. The example shop with a throw-away SQLite database and media folder, the demo data
   loaded, served by ``runserver`` on a free loopback port. No provider is called: a
   request only checks and stores the photo (the worker, not started here, would send it).
2. The schema the shop serves at /tryon/api/schema/ must be the committed
   ``docs/openapi.yaml``.
3. Schemathesis runs every check against the committed schema, with a guest's session
   and CSRF token (``scripts/fuzz_hooks.py``), bounded in examples per operation and in
   total time: no 5xx, every status, header and body as documented.
4. The shop's request log is counted by operation and status. The run fails on any 5xx,
   and unless it reached 201, 200, 204, 400 and 404 (a run that only met 403s, say,
   because the CSRF token went missing, would prove nothing).

The daily quota and the rate limit are lifted for the run, so the fuzzer gets past them
to the photo checks; their 429 answers are checked against the schema by
``tests/test_openapi.py``.
"""

import argparse
import collections
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "example_project"
SCHEMA = ROOT / "docs" / "openapi.yaml"
# Checks that do not fit this API: schema-valid data is refused when it is not a photo
# or not an active garment's id, which the schema cannot express.
EXCLUDED_CHECKS = ["positive_data_acceptance"]
MUST_SEE = {201, 200, 204, 400, 404}

FUZZ_SETTINGS = """\
from example_project.settings import *  # noqa: F403

TRYON = {**TRYON, "THROTTLE_RATE": None, "DAILY_QUOTA_GUEST": None}  # noqa: F405
"""

# runserver's access log: "POST /tryon/api/jobs/ HTTP/1.1" 201 243
LOG_LINE = re.compile(r'"([A-Z]+) (\S+) HTTP/[\d.]+" (\d{3})')
JOB_ID = re.compile(r"^/tryon/api/jobs/[^/]+/$")


class FuzzError(Exception):
    pass


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def shop_env(workdir):
    (Path(workdir) / "fuzz_settings.py").write_text(FUZZ_SETTINGS)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(workdir), str(SHOP)]),
        "DJANGO_SETTINGS_MODULE": "fuzz_settings",
        "TRYON_DEMO_DB": str(Path(workdir) / "db.sqlite3"),
        "TRYON_DEMO_MEDIA": str(Path(workdir) / "media"),
    }


def manage(env, *args, **kwargs):
    return subprocess.run(
        [sys.executable, str(SHOP / "manage.py"), *args], cwd=SHOP, env=env, check=True, **kwargs
    )


def wait_until_up(url, process, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise FuzzError(f"The shop stopped at start (exit {process.returncode}).")
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise FuzzError(f"The shop did not answer at {url} within {timeout} s.")


def check_served_schema(base_url):
    served = requests.get(f"{base_url}/tryon/api/schema/", timeout=30)
    if served.status_code == 404:
        raise FuzzError('The shop serves no schema: pip install -e ".[schema]" first.')
    served.raise_for_status()
    if yaml.safe_load(served.content) != yaml.safe_load(SCHEMA.read_text()):
        raise FuzzError(
            "The schema the shop serves differs from docs/openapi.yaml. Regenerate it:\n"
            "    python example_project/manage.py spectacular --file docs/openapi.yaml"
        )


def run_schemathesis(base_url, workdir, args):
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        str(SCHEMA),
        "--url",
        base_url,
        "--checks",
        "all",
        "--exclude-checks",
        ",".join(EXCLUDED_CHECKS),
        "--max-examples",
        str(args.max_examples),
        "--max-time",
        str(args.max_time),
        "--workers",
        str(args.workers),
        "--request-timeout",
        "30",
        "--report-dir",
        str(Path(workdir) / "report"),
    ]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "scripts"), os.environ.get("PYTHONPATH", "")]),
        "SCHEMATHESIS_HOOKS": "fuzz_hooks",
        "TRYON_FUZZ_URL": base_url,
        "TRYON_FUZZ_CODES": str(Path(workdir) / "codes.jsonl"),
        "NO_COLOR": "1",
    }
    return subprocess.run(command, cwd=workdir, env=env).returncode


def count_requests(log_text):
    """``{(method, path template): Counter(status)}`` of the API requests in the log."""
    counts = collections.defaultdict(collections.Counter)
    for method, path, status in LOG_LINE.findall(log_text):
        path = path.split("?", 1)[0]
        if not path.startswith("/tryon/api/") or path == "/tryon/api/schema/":
            continue
        if JOB_ID.match(path) and path != "/tryon/api/jobs/":
            path = "/tryon/api/jobs/{id}/"
        counts[(method, path)][int(status)] += 1
    return counts


def count_codes(path):
    """``Counter((status, code))`` of the error answers schemathesis received."""
    if not path.exists():
        return collections.Counter()
    lines = path.read_text().splitlines()
    return collections.Counter((status, code) for _, _, status, code in map(json.loads, lines))


def report(counts, codes):
    total = collections.Counter()
    print("--- Requests the shop answered, by operation and status")
    for (method, path), statuses in sorted(counts.items(), key=lambda item: item[0][::-1]):
        seen = ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items()))
        print(f"{method:7} {path:28} {sum(statuses.values()):6}   {seen}")
        total.update(statuses)
    seen = ", ".join(f"{status}: {n}" for status, n in sorted(total.items()))
    print(f"{'all':36} {sum(total.values()):6}   {seen}")
    print("--- Error codes in the answers to the fuzzer's requests")
    for (status, code), n in sorted(codes.items(), key=lambda item: (item[0][0], str(item[0][1]))):
        print(f"{status} {code!s:28} {n:6}")
    return total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--max-examples", type=int, default=100, help="per operation and phase")
    parser.add_argument("--max-time", type=int, default=120, help="seconds, for the whole run")
    # One at a time: each new try-on moves the guest's session to a new key, which the
    # next request must carry (as a browser's would); requests in parallel would race.
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="tryon-fuzz-") as workdir:
        env = shop_env(workdir)
        manage(env, "migrate", "--noinput", "-v", "0")
        manage(env, "load_demo_data", stdout=subprocess.DEVNULL)
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        log_path = Path(workdir) / "shop.log"
        server = ["runserver", f"127.0.0.1:{port}", "--noreload"]
        with open(log_path, "w") as log:
            shop = subprocess.Popen(
                [sys.executable, str(SHOP / "manage.py"), *server],
                cwd=SHOP,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until_up(f"{base_url}/tryon/api/garments/", shop)
            check_served_schema(base_url)
            started = time.monotonic()
            status = run_schemathesis(base_url, workdir, args)
            elapsed = time.monotonic() - started
        finally:
            shop.terminate()
            shop.wait(timeout=30)
        log_text = log_path.read_text()
        codes = count_codes(Path(workdir) / "codes.jsonl")

    total = report(count_requests(log_text), codes)
    print(f"Schemathesis ran {elapsed:.0f} s and exited {status}.")
    problems = []
    if status != 0:
        problems.append("schemathesis found failures (above)")
    server_errors = sorted(code for code in total if code >= 500)
    if server_errors:
        problems.append(f"the shop answered {server_errors}; its log:\n{log_text[-6000:]}")
    missing = sorted(MUST_SEE - set(total))
    if missing:
        problems.append(f"the run never reached the answers {missing}")
    if problems:
        print("Fuzzing failed: " + "; ".join(problems), file=sys.stderr)
        return 1
    print("Fuzzing passed: no 5xx, every answer as the schema documents.")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except FuzzError as err:
        print(f"Fuzzing failed: {err}", file=sys.stderr)
        sys.exit(1)
