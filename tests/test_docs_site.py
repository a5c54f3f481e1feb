"""The documentation site builds with warnings as errors, has every page, and strict
mode really refuses a broken link."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

# Its own project and database: run in the first suite only (see the marker).
pytestmark = pytest.mark.run_once

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def build(config, site_dir):
    """``mkdocs build --strict``; returns the finished process (output in ``.stdout``)."""
    options = ["--strict", "--config-file", str(config), "--site-dir", str(site_dir)]
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", *options],
        cwd=config.parent,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )


class ConfigLoader(yaml.SafeLoader):
    """Reads mkdocs.yml as MkDocs does, with its ``!!python/name:`` references (the
    Mermaid fence's formatter) kept as their names."""


ConfigLoader.add_multi_constructor(
    "tag:yaml.org,2002:python/name:", lambda loader, suffix, node: suffix
)


def nav_pages(nav):
    for entry in nav:
        for value in entry.values():
            if isinstance(value, list):
                yield from nav_pages(value)
            else:
                yield value


def test_the_site_builds_with_every_page(tmp_path):
    site = tmp_path / "site"
    done = build(ROOT / "mkdocs.yml", site)
    assert done.returncode == 0, done.stdout[-4000:]

    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=ConfigLoader)
    pages = list(nav_pages(config["nav"]))
    assert sorted(pages) == sorted(p.name for p in DOCS.glob("*.md"))
    for page in pages:
        built = site / "index.html" if page == "index.md" else site / page[:-3] / "index.html"
        assert built.exists(), page

    # The changelog page is CHANGELOG.md itself, every release heading of it.
    changelog = (site / "changelog" / "index.html").read_text()
    for heading in re.findall(r"^## (.+)$", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE):
        assert heading in changelog, heading
    # The committed schema is published beside the page that describes it.
    assert (site / "openapi.yaml").read_bytes() == (DOCS / "openapi.yaml").read_bytes()


def test_strict_mode_refuses_a_broken_link(tmp_path):
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copy(ROOT / "CHANGELOG.md", tmp_path / "CHANGELOG.md")
    page = tmp_path / "docs" / "quickstart.md"
    page.write_text(page.read_text() + "\nSee [the missing page](no-such-page.md).\n")

    done = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0
    assert "no-such-page.md" in done.stdout
