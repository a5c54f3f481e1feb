"""The docs keep up with the code."""

import re
from pathlib import Path

import django_tryon
from django_tryon.conf import DEFAULTS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_setting_is_documented_with_its_default():
    text = (DOCS / "settings.md").read_text()
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| `([^`]*)`", text, flags=re.MULTILINE))
    missing = sorted(set(DEFAULTS) - set(rows))
    assert not missing, f"Settings not in docs/settings.md: {missing}"
    unknown = sorted(set(rows) - set(DEFAULTS))
    assert not unknown, f"docs/settings.md documents settings that do not exist: {unknown}"
    for key, documented in rows.items():
        assert documented == repr(DEFAULTS[key]).replace("'", '"'), key


def check_ids_in_code():
    """``{id: number of places}`` of every ``id="django_tryon.X000"`` in the package."""
    found: dict[str, int] = {}
    # The package as imported: the installed wheel, when the suite runs against it.
    for path in Path(django_tryon.__file__).resolve().parent.rglob("*.py"):
        for check_id in re.findall(r'id="(django_tryon\.[EW]\d{3})"', path.read_text()):
            found[check_id] = found.get(check_id, 0) + 1
    return found


def test_every_check_id_is_documented_in_one_table_and_made_in_one_place():
    text = (DOCS / "settings.md").read_text()
    rows = re.findall(
        r"^\| `(django_tryon\.([EW])\d{3})` \| (error|warning) \| (.+?) \| (.+?) \|$",
        text,
        flags=re.MULTILINE,
    )
    documented = [row[0] for row in rows]
    assert len(documented) == len(set(documented)), "an id documented twice"
    in_code = check_ids_in_code()
    assert set(documented) == set(in_code)
    # One meaning per id: two checks sharing an id could not both be documented.
    assert [check_id for check_id, places in in_code.items() if places > 1] == []
    for check_id, letter, level, meaning, fix in rows:
        assert level == {"E": "error", "W": "warning"}[letter], check_id
        assert meaning.strip() and fix.strip(), check_id


def makefile_extras(target):
    """The extras ``make <target>`` installs, read from the rule of the stamp it needs."""
    text = (DOCS.parent / "Makefile").read_text()
    stamp = re.search(rf"^{target}: \$\((\w+)\)", text, flags=re.MULTILINE)[1]
    rule = re.search(rf"^\$\({stamp}\):.*\n((?:\t.*\n)+)", text, flags=re.MULTILINE)[1]
    return set(re.search(r'-e "\.\[([\w,-]+)\]"', rule)[1].split(","))


def test_what_the_docs_say_make_installs_is_what_it_installs():
    claims = 0
    for page in sorted(DOCS.glob("*.md")):
        for paragraph in page.read_text().split("\n\n"):
            said = re.search(
                r"installs the package with its ((?:`[\w-]+`(?:,? and |, )?)+) extras?", paragraph
            )
            targets = re.findall(r"`make (demo|test)`", paragraph)
            if not said or not targets:
                continue
            claims += 1
            named = set(re.findall(r"`([\w-]+)`", said[1]))
            for target in set(targets):
                assert named == makefile_extras(target), f"{page.name}: make {target}"
    assert claims, "docs/example-shop.md says which extras make demo installs"


def test_the_worker_is_given_the_time_to_finish_its_calls_when_stopped():
    """The stop timeouts docs/deployment.md gives outlast the calls a stopping worker
    finishes: a worker killed before its submit is answered leaves a job in doubt."""
    from django_tryon.backends.vertex import VertexBackend

    text = (DOCS / "deployment.md").read_text()
    unit = re.search(r"^```ini\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)[1]
    # "give it the read timeout twice over", by default and with Vertex AI's reads.
    stop = float(re.search(r"^TimeoutStopSec=(\d+)$", unit, flags=re.MULTILINE)[1])
    assert stop >= 2 * DEFAULTS["READ_TIMEOUT"]
    stop_for_vertex = float(re.search(r"TimeoutStopSec=(\d+) for it", unit)[1])
    assert stop_for_vertex >= 2 * VertexBackend.min_read_timeout
    call = DEFAULTS["CONNECT_TIMEOUT"] + DEFAULTS["READ_TIMEOUT"]
    vertex_call = DEFAULTS["CONNECT_TIMEOUT"] + VertexBackend.min_read_timeout
    said = " ".join(text.split())
    assert f"({call:g} s by default; {vertex_call:g} s with Vertex AI" in said
