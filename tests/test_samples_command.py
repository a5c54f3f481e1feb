"""``manage.py tryon_samples``: the quick start's sample garment and photo, or every sample."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from django_tryon.sandbox import samples

ROOT = Path(__file__).resolve().parent.parent


def test_writes_the_quick_starts_garment_and_photo(tmp_path, capsys):
    call_command("tryon_samples", dir=str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["me.jpg", "tshirt.png"]
    with Image.open(tmp_path / "tshirt.png") as garment:
        assert (garment.format, garment.size) == ("PNG", (1024, 1024))
    with Image.open(tmp_path / "me.jpg") as photo:
        assert (photo.format, photo.size) == ("JPEG", samples.MODEL_SIZE)
    assert capsys.readouterr().out.splitlines() == [
        f"Wrote {tmp_path / 'tshirt.png'}",
        f"Wrote {tmp_path / 'me.jpg'}",
    ]


def test_never_replaces_a_file_unless_forced(tmp_path):
    (tmp_path / "me.jpg").write_bytes(b"the shopper's own photo")
    with pytest.raises(CommandError, match=r"me\.jpg already exists .*--force"):
        call_command("tryon_samples", dir=str(tmp_path))
    assert (tmp_path / "me.jpg").read_bytes() == b"the shopper's own photo"
    assert not (tmp_path / "tshirt.png").exists()
    call_command("tryon_samples", dir=str(tmp_path), force=True, verbosity=0)
    assert (tmp_path / "me.jpg").read_bytes()[:2] == b"\xff\xd8"


def test_all_writes_every_sample(tmp_path):
    call_command("tryon_samples", "--all", dir=str(tmp_path), verbosity=0)
    expected = {f"{g.slug}.png" for g in samples.SAMPLE_GARMENTS}
    expected |= {f"{m.slug}.jpg" for m in samples.SAMPLE_MODELS}
    assert {p.name for p in tmp_path.iterdir()} == expected


def test_a_folder_that_does_not_exist_is_refused(tmp_path):
    with pytest.raises(CommandError, match="is not a folder"):
        call_command("tryon_samples", dir=str(tmp_path / "nope"))


@pytest.mark.parametrize("command", [["tryon_sandbox", "--port", "0"], ["tryon_samples"]])
def test_without_the_sandbox_extra_the_commands_say_what_to_install(tmp_path, command):
    """No traceback: one line naming the extra (NumPy hidden by a module that refuses import)."""
    blocker = tmp_path / "blocker"
    (blocker / "numpy").mkdir(parents=True)
    (blocker / "numpy" / "__init__.py").write_text("raise ImportError('No module named numpy')\n")
    run = subprocess.run(
        [sys.executable, "-m", "django", *command],
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(blocker), str(ROOT)]),
            "DJANGO_SETTINGS_MODULE": "tests.settings",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [
        "CommandError: The try-on sandbox needs NumPy: pip install 'django-tryon[sandbox]'."
    ]
