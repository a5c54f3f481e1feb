"""Run an example shop with everything it needs: ``make demo`` and ``make demo-oscar``
call this (``--shop oscar``: the django-oscar shop of ``example_oscar/``).

Migrates the shop's database, loads the demo catalogue, makes a local admin
account, then starts three processes together: the sandbox provider, the
try-on worker and the web server. Prints the shop's address. Ctrl-C (or
SIGTERM) stops all three; if one of them dies, the others are stopped too.

Environment: ``DEMO_PROVIDER`` (``ailab``, the default, or ``fashn``: the
provider the sandbox and the shop speak), ``DEMO_WEBHOOKS`` (``1``, the
default on FASHN: the sandbox calls the shop back when a try-on is ready;
``0``: the worker polls), ``DEMO_PORT`` (web server, default 8000),
``TRYON_SANDBOX_PORT`` (sandbox, default 8765),
``TRYON_SANDBOX_PROCESSING_TIME`` (seconds a try-on takes, default 3), and the
example settings' ``TRYON_DEMO_DB`` and ``TRYON_DEMO_MEDIA``.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "tryon-demo"  # a local demo account on loopback only
STOP_TIMEOUT = 15
PROVIDERS = ("ailab", "fashn")  # the sandbox's protocols (tryon_sandbox --protocol)
PUSH_PROVIDERS = ("fashn",)  # those that call the shop back (webhooks)

ADMIN_EMAIL = "admin@example.com"
BY_USERNAME = f"  (user {ADMIN_USERNAME!r}, password {ADMIN_PASSWORD!r})"
BY_EMAIL = f"  (email {ADMIN_EMAIL!r}, password {ADMIN_PASSWORD!r})"

#: name -> (folder, settings module, [(label, path, how to sign in)] the banner lists)
SHOPS = {
    "example": (
        ROOT / "example_project",
        "example_project.settings",
        [("Shop", "", ""), ("Admin", "admin/", BY_USERNAME)],
    ),
    "oscar": (
        ROOT / "example_oscar",
        "oscar_shop.settings",
        # Oscar's own sign-in page asks for the email address.
        [("Shop", "", ""), ("Dashboard", "dashboard/", BY_EMAIL), ("Admin", "admin/", BY_USERNAME)],
    ),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shop", choices=sorted(SHOPS), default="example")
    shop_name = parser.parse_args(argv).shop
    folder, settings_module, pages = SHOPS[shop_name]
    web_port = int(os.environ.get("DEMO_PORT", "8000"))
    sandbox_port = int(os.environ.get("TRYON_SANDBOX_PORT", "8765"))
    processing_time = os.environ.get("TRYON_SANDBOX_PROCESSING_TIME", "3")
    provider = os.environ.get("DEMO_PROVIDER", "ailab")
    if provider not in PROVIDERS:
        sys.exit(f"DEMO_PROVIDER is {provider!r}; use one of: {', '.join(PROVIDERS)}.")
    webhooks = os.environ.get("DEMO_WEBHOOKS", "1" if provider in PUSH_PROVIDERS else "0")
    if webhooks not in ("0", "1"):
        sys.exit(f"DEMO_WEBHOOKS is {webhooks!r}; use 1 (webhooks) or 0 (polling).")
    webhooks = webhooks == "1"
    if webhooks and provider not in PUSH_PROVIDERS:
        sys.exit(
            f"DEMO_WEBHOOKS=1 needs a provider that calls back: {', '.join(PUSH_PROVIDERS)} "
            f"(DEMO_PROVIDER is {provider!r})."
        )
    env = {
        **os.environ,
        # The shop's origin as the sandbox reaches it, or nothing: polling.
        "TRYON_WEBHOOK_BASE_URL": f"http://127.0.0.1:{web_port}" if webhooks else "",
        "DEMO_PROVIDER": provider,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "TRYON_SANDBOX_PORT": str(sandbox_port),
        "PYTHONUNBUFFERED": "1",
    }
    for name, port in (("web server", web_port), ("sandbox", sandbox_port)):
        if not port_is_free(port):
            sys.exit(
                f"Port {port} for the {name} is in use. Stop what uses it, or choose "
                f"another with {'DEMO_PORT' if name == 'web server' else 'TRYON_SANDBOX_PORT'}."
            )

    say("Preparing the example shop's database and catalogue...")
    manage(folder, env, "migrate", "--noinput", "-v", "0")
    manage(folder, env, "load_demo_data")
    create_admin(folder, env)

    processes = {}
    stopping = []

    def request_stop(signum, frame):
        stopping.append(signum)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        processes["sandbox"] = start(
            folder,
            env,
            "tryon_sandbox",
            "--port",
            str(sandbox_port),
            "--processing-time",
            processing_time,
            "--protocol",
            provider,
        )
        processes["worker"] = start(folder, env, "tryon_poll")
        processes["web"] = start(folder, env, "runserver", f"127.0.0.1:{web_port}", "--noreload")
        if not wait_for_port(web_port, processes, stopping) or not wait_for_port(
            sandbox_port, processes, stopping
        ):
            return stop_all(processes, failed=True)
        banner(web_port, sandbox_port, pages, provider, webhooks)
        while not stopping:
            for name, process in processes.items():
                if process.poll() is not None:
                    say(f"The {name} stopped (exit code {process.returncode}); stopping the demo.")
                    return stop_all(processes, failed=True)
            time.sleep(0.2)
        return stop_all(processes)
    except BaseException:
        stop_all(processes, failed=True)
        raise


def say(message):
    print(f"[demo] {message}", flush=True)


def manage(folder, env, *args):
    subprocess.run([sys.executable, "manage.py", *args], cwd=folder, env=env, check=True)


def create_admin(folder, env):
    result = subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput"],
        cwd=folder,
        env={
            **env,
            "DJANGO_SUPERUSER_USERNAME": ADMIN_USERNAME,
            "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD,
            "DJANGO_SUPERUSER_EMAIL": ADMIN_EMAIL,
        },
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 and "already taken" not in result.stderr:
        sys.stderr.write(result.stderr)
        raise subprocess.CalledProcessError(result.returncode, result.args)


def start(folder, env, *args):
    # Each child in its own session: the terminal's Ctrl-C reaches this runner
    # only, which then stops the children in order and waits for them.
    return subprocess.Popen(
        [sys.executable, "manage.py", *args], cwd=folder, env=env, start_new_session=True
    )


def port_is_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for_port(port, processes, stopping, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopping:
        if any(process.poll() is not None for process in processes.values()):
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def banner(web_port, sandbox_port, pages, provider, webhooks):
    shop = f"http://127.0.0.1:{web_port}/"
    results = "the sandbox calls the shop back (webhooks)" if webhooks else "the worker polls"
    lines = [
        "",
        f"The example shop is running (provider: the sandbox speaking {provider}; "
        f"results: {results}):",
        *(f"  {(label + ':').ljust(9)} {shop}{path}{account}" for label, path, account in pages),
        f"  Sandbox:  http://127.0.0.1:{sandbox_port}/_sandbox/control",
        "Open a product and press 'Try it on'. Press Ctrl-C to stop everything.",
        "",
    ]
    print("\n".join(lines), flush=True)


def stop_all(processes, failed=False):
    """Stop the web server first (no new jobs), then the worker, then the sandbox."""
    for name in ("web", "worker", "sandbox"):
        process = processes.get(name)
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    say("Stopped the sandbox, the worker and the web server.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
