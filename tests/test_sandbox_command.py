"""``manage.py tryon_sandbox``: a thin command over the sandbox server."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.core.management import CommandError, call_command

from tests.support import contract

ROOT = Path(__file__).resolve().parent.parent


def test_the_command_refuses_a_host_beyond_loopback():
    with pytest.raises(CommandError, match="--allow-remote"):
        call_command("tryon_sandbox", "--host", "0.0.0.0", "--port", "0")


def test_the_command_refuses_bad_fault_options():
    with pytest.raises(CommandError, match="share"):
        call_command("tryon_sandbox", "--port", "0", "--drop", "3")
    with pytest.raises(CommandError, match="server-error-statuses"):
        call_command("tryon_sandbox", "--port", "0", "--server-error-statuses", "5xx")


def test_the_command_serves_until_stopped_with_its_options():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "django", "tryon_sandbox", "--port", "0"]
    command += ["--api-key", "cmd-key", "--rate-limited", "1", "--fault-targets", "submit"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        first_line = process.stdout.readline()
        url = first_line.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        headers = {contract.API_KEY_HEADER: "cmd-key"}
        answer = requests.get(url + contract.CREDITS_PATH, headers=headers, timeout=10)
        assert answer.status_code == 200
        wrong = requests.get(url + contract.CREDITS_PATH, headers={contract.API_KEY_HEADER: "x"})
        assert wrong.status_code == 401
        refused = requests.post(url + contract.SUBMIT_PATH, headers=headers, timeout=10)
        assert refused.status_code == 429
        state = requests.get(url + "/_sandbox/control", timeout=10).json()
        assert state["options"]["fault_targets"] == ["submit"]
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def test_the_command_speaks_fashn_with_its_webhook_faults():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "django", "tryon_sandbox", "--port", "0"]
    command += ["--protocol", "fashn", "--webhook-missing", "1", "--webhook-retry-interval", "2"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
        # The second line, as docs/sandbox.md shows it.
        shown = (ROOT / "docs" / "sandbox.md").read_text()
        second_line = process.stdout.readline()
        assert second_line in shown
        assert "FashnBackend" in second_line
        answer = requests.get(
            url + contract.FASHN_CREDITS_PATH, headers={"Authorization": "Bearer k"}, timeout=10
        )
        assert answer.json()["credits"]["total"] == 1_000_000
        state = requests.get(url + "/_sandbox/control", timeout=10).json()
        assert state["protocol"] == "fashn"
        assert state["options"]["webhook_missing"] == 1.0
        assert state["options"]["webhook_retry_interval"] == 2.0
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def test_the_command_refuses_an_unknown_protocol():
    with pytest.raises(CommandError, match="protocol"):
        call_command("tryon_sandbox", "--port", "0", "--protocol", "kling")
