"""docs/oscar.md's commands, run as written on the example Oscar shop's catalogue."""

import io
import re
import shlex
from pathlib import Path

import pytest
from django.core.management import call_command

DOCS = Path(__file__).resolve().parents[2] / "docs" / "oscar.md"


def console_blocks(text):
    """``[(command, [expected output lines])]`` of each ``$ python manage.py`` line."""
    runs = []
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.DOTALL):
        for line in block.splitlines():
            if line.startswith("$ "):
                runs.append((line[2:], []))
            elif runs:
                runs[-1][1].append(line)
    return [(command, out) for command, out in runs if command.startswith("python manage.py ")]


def test_the_install_commands_run_as_written(db, settings, django_capture_on_commit_callbacks):
    from oscar_shop.demo_data import load_demo_data

    # The catalogue is there before the app: no garment yet.
    mapping, settings.TRYON_OSCAR = settings.TRYON_OSCAR, {}
    with django_capture_on_commit_callbacks(execute=True):
        load_demo_data()
    settings.TRYON_OSCAR = mapping
    commands = console_blocks(DOCS.read_text())
    assert [command for command, _ in commands] == [
        "python manage.py migrate",
        "python manage.py tryon_oscar_sync",
        "python manage.py check",
    ]
    for command, expected in commands:
        name, *args = shlex.split(command)[2:]
        out = io.StringIO()
        call_command(name, *args, stdout=out, stderr=io.StringIO())
        if expected:
            assert out.getvalue().splitlines() == expected, command


@pytest.mark.parametrize("key", ["CATEGORIES", "PRODUCT_CLASSES"])
def test_the_settings_table_names_every_key(key):
    from django_tryon.contrib.oscar.conf import DEFAULTS

    assert set(DEFAULTS) == {"CATEGORIES", "PRODUCT_CLASSES"}
    assert f"| `{key}` | `{{}}` |" in DOCS.read_text()


def python_block(text, first_line):
    """The ``python`` block of the page whose first line is ``first_line``."""
    (block,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
        if block.startswith(first_line + "\n")
    ]
    return block


def test_the_urls_as_written_serve_media_under_runserver(
    db, settings, client, tmp_path, monkeypatch
):
    """The page's urls.py, as the shop's own: Oscar's pages, the try-on API, and in
    DEBUG the product images and try-on pictures (without them, runserver answered
    404 for every product image and every result the dialog showed)."""
    (tmp_path / "docs_oscar_urls.py").write_text(python_block(DOCS.read_text(), "# urls.py"))
    monkeypatch.syspath_prepend(str(tmp_path))
    settings.DEBUG = True  # runserver's; static() serves nothing otherwise
    settings.ROOT_URLCONF = "docs_oscar_urls"
    result = Path(settings.MEDIA_ROOT) / "tryon" / "results" / "docs-check.jpg"
    result.parent.mkdir(parents=True, exist_ok=True)
    result.write_bytes(b"a try-on picture")
    try:
        answer = client.get(settings.MEDIA_URL + "tryon/results/docs-check.jpg")
        assert answer.status_code == 200
        assert b"".join(answer.streaming_content) == b"a try-on picture"
        assert client.get("/tryon/api/garments/").status_code == 200
        assert client.get("/catalogue/").status_code == 200
    finally:
        result.unlink()


def test_the_settings_as_written_run(monkeypatch):
    """The page's settings block, run on its own: every name it uses is defined (it
    read os.environ without importing os), both apps come above Oscar's, and the
    dashboard gets the Try-on menu."""
    from django_tryon.contrib.oscar.dashboard import navigation

    monkeypatch.setenv("AILABAPI_API_KEY", "from-the-environment")
    namespace: dict = {}
    exec(python_block(DOCS.read_text(), "# settings.py"), namespace)
    apps = namespace["INSTALLED_APPS"]
    shop = apps.index("oscar.config.Shop")
    assert apps.index("django_tryon") < shop and apps.index("django_tryon.contrib.oscar") < shop
    assert namespace["TRYON"] == {"API_KEY": "from-the-environment"}
    menu = namespace["OSCAR_DASHBOARD_NAVIGATION"][-1]
    assert (menu["label"], [child["url_name"] for child in menu["children"]]) == (
        navigation()[-1]["label"],
        [child["url_name"] for child in navigation()[-1]["children"]],
    )
