"""docs/quickstart.md, run as written: a wheel, a fresh virtual environment, a fresh
project, the page's commands and snippets in order, then the stored picture and
the same picture served by the development server.

The page marks what the test runs with a comment before each code block:

- ``<!-- quickstart: run -->``: a ``console`` block; each ``$`` line runs in
  the project's folder, and the lines after it are its expected output
  (``...`` matches anything within a line).
- ``<!-- quickstart: start -->``: a long-running command (a terminal of its
  own), left running until the end; its expected lines must appear in its output.
- ``<!-- quickstart: append FILE -->``: a ``python`` block added to the end of FILE.
- ``<!-- quickstart: shell -->``: a ``python`` block in ``>>>`` form, run in
  ``manage.py shell`` as a doctest; consecutive blocks are one session.

The ports the page names (8765, 8000) become free ones, so the test can run
beside a demo. Installing the wheel is offline: ``pip`` runs as written, with
``--no-index`` and ``--find-links`` of the built wheel given through pip's
environment variables, in a virtual environment that sees this test run's own
dependencies (Django, DRF, requests, Pillow, NumPy) but not its django_tryon.
"""

import os
import re
import shlex
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

from tests.support.console import console_commands, output_matches

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "quickstart.md"
MARKED_BLOCK = re.compile(
    r"^<!-- quickstart: (?P<kind>run|start|append|shell)(?: (?P<target>\S+))? -->\n"
    r"```(?P<language>\w+)\n(?P<body>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)
DOCUMENTED_PORTS = {"sandbox": "8765", "site": "8000"}
STEP_TIMEOUT = 120


@dataclass
class Block:
    kind: str
    target: str | None
    language: str
    body: str


def marked_blocks(text):
    return [
        Block(m["kind"], m["target"], m["language"], m["body"]) for m in MARKED_BLOCK.finditer(text)
    ]


def commands(block):
    """``[(command, [expected output lines])]`` of a console block."""
    return console_commands(block.body)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def test_the_page_marks_every_step_of_the_quick_start():
    blocks = marked_blocks(PAGE.read_text())
    kinds = [block.kind for block in blocks]
    assert kinds.count("run") >= 4 and kinds.count("start") == 3
    assert {b.target for b in blocks if b.kind == "append"} == {
        "mysite/settings.py",
        "mysite/urls.py",
    }
    assert kinds.count("shell") == 2
    # No command block of the page's first steps is left unmarked (and so untested).
    first_steps = PAGE.read_text().split("## 8.")[0]
    fences = re.findall(r"^```(console|python)$", first_steps, flags=re.MULTILINE)
    assert len(fences) == len(blocks)


def test_output_matching():
    assert output_matches(["Wrote ...png", "b"], "x\nWrote a.png\ny\nb\n")
    assert not output_matches(["b", "Wrote ...png"], "Wrote a.png\nb\n")
    assert not output_matches(["Wrote a.png"], "Wrote a.png.bak\n")


def overlay_of_dependencies(folder):
    """A folder that links every package of this test run's environment but django_tryon."""
    site_packages = Path(sysconfig.get_paths()["purelib"])
    folder.mkdir()
    for entry in site_packages.iterdir():
        name = entry.name.lower()
        if "django_tryon" in name or "django-tryon" in name or name.endswith(".pth"):
            continue
        (folder / entry.name).symlink_to(entry)
    return folder


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=STEP_TIMEOUT,
    )
    (path,) = dist.glob("django_tryon-*.whl")
    return path


@pytest.fixture
def fresh_venv(tmp_path, wheel):
    """A new virtual environment whose only django_tryon is the one pip installs."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run(
        [venv / "bin" / "python", "-c", where],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    overlay = overlay_of_dependencies(tmp_path / "dependencies")
    (Path(purelib) / "test_dependencies.pth").write_text(f"{overlay}\n")
    # The scripts pip would have written for the dependencies it finds installed.
    for script, module in (("pip", "pip"), ("django-admin", "django")):
        path = venv / "bin" / script
        path.write_text(
            f"#!{venv / 'bin' / 'python'}\nimport runpy\n"
            f"runpy.run_module({module!r}, run_name='__main__')\n"
        )
        path.chmod(0o755)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIP_", "PYTHON", "DJANGO_", "VIRTUAL_ENV", "TRYON_"))
    }
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        VIRTUAL_ENV=str(venv),
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(wheel.parent),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PYTHONUNBUFFERED="1",
    )
    return venv, env


class QuickStart:
    """Runs the page's blocks in a project folder; stops what it started."""

    def __init__(self, folder, env, ports):
        self.folder = folder
        self.env = env
        self.ports = ports
        self.started: list[tuple[subprocess.Popen, Path]] = []
        self.shell_session: list[str] = []

    def localise(self, text):
        for name, documented in DOCUMENTED_PORTS.items():
            text = text.replace(documented, self.ports[name])
        return text

    def run(self, block):
        for command, expected in commands(block):
            done = subprocess.run(
                self.localise(command),
                shell=True,
                cwd=self.folder,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=STEP_TIMEOUT,
            )
            output = done.stdout + done.stderr
            assert done.returncode == 0, f"$ {command}\n{output}"
            assert output_matches([self.localise(e) for e in expected], output), (
                f"$ {command}: expected {expected}, got:\n{output}"
            )

    def start(self, block):
        ((command, expected),) = commands(block)
        log = self.folder.parent / f"process-{len(self.started)}.log"
        with open(log, "w") as output:
            process = subprocess.Popen(
                shlex.split(self.localise(command)),
                cwd=self.folder,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.started.append((process, log))
        deadline = time.monotonic() + 30
        while not output_matches([self.localise(e) for e in expected], log.read_text()):
            assert process.poll() is None, f"$ {command} exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"$ {command}: no {expected} in\n{log.read_text()}"
            time.sleep(0.2)

    def append(self, block):
        path = self.folder / block.target
        path.write_text(path.read_text() + "\n" + self.localise(block.body))

    def shell(self, block):
        """Collect a ``>>>`` block: consecutive ones are one shell session (see :meth:`step`)."""
        self.shell_session.append(self.localise(block.body))

    def step(self, block):
        if block.kind != "shell":
            self.end_shell_session()
        getattr(self, block.kind)(block)

    def end_shell_session(self):
        """Run the ``>>>`` blocks collected so far in one ``manage.py shell``, as a doctest."""
        if not self.shell_session:
            return
        session = self.folder.parent / "session.txt"
        session.write_text("\n".join(self.shell_session))
        self.shell_session = []
        self.run_python_in_shell(
            "import doctest, sys\n"
            f"result = doctest.testfile({str(session)!r}, module_relative=False,"
            " optionflags=doctest.ELLIPSIS, globs={})\n"
            "sys.exit(1 if result.failed else 0)\n"
        )

    def run_python_in_shell(self, code):
        done = subprocess.run(
            ["python", "manage.py", "shell", "-c", code],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip().splitlines()[-1]  # after the shell's own notices

    def stop(self):
        for process, _log in self.started:
            process.terminate()
        for process, _log in self.started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def logs(self):
        return "\n".join(f"--- {log.name}\n{log.read_text()}" for _p, log in self.started)


@pytest.mark.slow
@pytest.mark.own_phase
def test_the_quick_start_runs_as_written_to_a_stored_and_served_picture(tmp_path, fresh_venv):
    venv, env = fresh_venv
    project = tmp_path / "project"
    project.mkdir()
    quick_start = QuickStart(project, env, {"sandbox": free_port(), "site": free_port()})
    try:
        for block in marked_blocks(PAGE.read_text()):
            quick_start.step(block)
        quick_start.end_shell_session()
        # The django_tryon that ran is the wheel's, in the new environment.
        location = quick_start.run_python_in_shell(
            "import django_tryon; print(django_tryon.__file__)"
        )
        assert Path(location).is_relative_to(venv), location
        # The picture is stored, and the development server serves it at its URL.
        url = quick_start.run_python_in_shell(
            "from django_tryon.models import TryOnJob\n"
            "job = TryOnJob.objects.get()\n"
            "assert job.status == 'succeeded' and job.result_image.storage.exists("
            "job.result_image.name)\n"
            "print(job.result_image.url)"
        )
        assert url.startswith("/media/tryon/results/")
        with urllib.request.urlopen(f"http://127.0.0.1:{quick_start.ports['site']}{url}") as answer:
            assert answer.status == 200
            picture = Image.open(BytesIO(answer.read()))
            picture.load()
        assert picture.width >= 256
    except BaseException:
        print(quick_start.logs())
        raise
    finally:
        quick_start.stop()


def test_a_wrong_expectation_fails_the_step(tmp_path):
    """The runner would catch output that differs from the page."""
    quick_start = QuickStart(tmp_path, dict(os.environ), {"sandbox": "1", "site": "2"})
    block = Block("run", None, "console", "$ echo hello\nhello world\n")
    with pytest.raises(AssertionError, match="expected"):
        quick_start.run(block)
    quick_start.run(Block("run", None, "console", "$ echo hello\nhello\n"))
