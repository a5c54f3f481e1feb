"""The French catalogue: complete, compiled, and what a French shopper reads.

The catalogue is read from the installed package (``django_tryon.__file__``), so
this file also proves, when the suite runs against the built wheel, that the
wheel carries the ``.po``, the ``.pot`` and the compiled ``.mo``.
"""

import ast
import gettext
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import translation

import django_tryon
from django_tryon.errors import message_for
from django_tryon.models import TryOnJob
from tests.support.api import (
    job_url,
    post_job,
)
from tests.support.templatetag import config_of, make_garment, render
from tests.testapp.models import Product

pytestmark = pytest.mark.usefixtures("fresh_throttle_cache")

LOCALE = Path(django_tryon.__file__).resolve().parent / "locale"
TEMPLATE = LOCALE / "django.pot"
FRENCH_PO = LOCALE / "fr" / "LC_MESSAGES" / "django.po"
FRENCH_MO = LOCALE / "fr" / "LC_MESSAGES" / "django.mo"

# Python's %-placeholders: %(name)s, %(count)d, %(seconds).1f, %(minutes)02d.
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[-#0 +]*\d*(?:\.\d+)?[sdfr]")

WITH_LOCALE_MIDDLEWARE = override_settings(
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.locale.LocaleMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ]
)


@pytest.fixture(autouse=True)
def language_restored():
    """LocaleMiddleware activates the request's language and leaves it active in the
    thread: the tests after these must not run in French."""
    with translation.override(translation.get_language()):
        yield


@dataclass
class Entry:
    """One message of a .po or .pot file: ``strings`` maps ``msgid``, ``msgid_plural``,
    ``msgctxt``, ``msgstr`` and ``msgstr[N]`` to their (joined, unescaped) text."""

    strings: dict = field(default_factory=dict)
    flags: set = field(default_factory=set)
    obsolete: bool = False

    @property
    def msgid(self):
        return self.strings["msgid"]

    @property
    def msgid_plural(self):
        return self.strings.get("msgid_plural")

    @property
    def msgctxt(self):
        return self.strings.get("msgctxt")

    @property
    def key(self):
        return (self.msgctxt, self.msgid, self.msgid_plural)

    @property
    def translations(self):
        """The msgstr, or the msgstr[N] in order of N."""
        if self.msgid_plural is None:
            return [self.strings["msgstr"]]
        plurals = sorted(k for k in self.strings if k.startswith("msgstr["))
        return [self.strings[k] for k in plurals]


def read_po(path):
    """Every entry of a gettext catalogue, the header (msgid "") first. The quoted
    strings use C escapes, which Python's string literals read alike."""
    parsed, entry, keyword = [], None, None
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        line = line.strip()
        if not line:
            if entry is not None:
                parsed.append(entry)
            entry = None
            continue
        if entry is None:
            entry = Entry()
        if line.startswith("#~"):
            entry.obsolete = True
        elif line.startswith("#,"):
            entry.flags |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            entry.strings[keyword] += ast.literal_eval(line)
        else:
            keyword, _, value = line.partition(" ")
            entry.strings[keyword] = ast.literal_eval(value)
    return parsed


def header(path):
    (first, *_) = read_po(path)
    assert first.msgid == ""
    fields = dict(
        line.split(": ", 1) for line in first.strings["msgstr"].splitlines() if ": " in line
    )
    return first, fields


def messages(path):
    return [entry for entry in read_po(path) if entry.msgid and not entry.obsolete]


# The catalogue ------------------------------------------------------------------------


def test_the_template_and_the_french_catalogue_have_the_same_messages():
    template = {entry.key for entry in messages(TEMPLATE)}
    french = {entry.key for entry in messages(FRENCH_PO)}
    assert len(template) > 200
    assert template - french == set(), "messages of the template missing from the .po"
    assert french - template == set(), "messages of the .po no longer in the template"


def test_every_french_message_is_translated_and_none_is_fuzzy():
    first, fields = header(FRENCH_PO)
    assert "fuzzy" not in first.flags
    assert fields["Language"] == "fr"
    assert fields["Plural-Forms"] == "nplurals=2; plural=(n > 1);"
    catalogue = messages(FRENCH_PO)
    assert [entry.msgid for entry in catalogue if "fuzzy" in entry.flags] == []
    assert [entry.msgid for entry in catalogue if not all(entry.translations)] == []
    for entry in catalogue:
        expected = 1 if entry.msgid_plural is None else 2
        assert len(entry.translations) == expected, entry.msgid


def test_every_translation_keeps_the_placeholders_of_its_message():
    for entry in messages(FRENCH_PO):
        originals = [entry.msgid] + ([entry.msgid_plural] if entry.msgid_plural else [])
        expected = set()
        for original in originals:
            expected |= set(PLACEHOLDER.findall(original))
        for translated in entry.translations:
            found = set(PLACEHOLDER.findall(translated))
            # A singular may leave out the count ("one picture"), never add a placeholder.
            assert found <= expected, (entry.msgid, translated)
            if entry.msgid_plural is None:
                assert found == expected, (entry.msgid, translated)


def test_the_committed_mo_is_compiled_from_the_po():
    with FRENCH_MO.open("rb") as compiled:
        catalogue = gettext.GNUTranslations(compiled)
    assert catalogue.info()["language"] == "fr"
    entries = messages(FRENCH_PO)
    for entry in entries:
        context = () if entry.msgctxt is None else (entry.msgctxt,)
        if entry.msgid_plural is None:
            lookup = catalogue.gettext if not context else catalogue.pgettext
            assert lookup(*context, entry.msgid) == entry.translations[0], (
                entry.msgid,
                "recompile the .mo",
            )
        else:
            lookup = catalogue.ngettext if not context else catalogue.npgettext
            for count, index in ((1, 0), (2, 1)):
                got = lookup(*context, entry.msgid, entry.msgid_plural, count)
                assert got == entry.translations[index], (entry.msgid, "recompile the .mo")
    # No message left in the .mo that the .po no longer has (the header is the "" key).
    compiled_ids = {
        msgid[0] if isinstance(msgid, tuple) else msgid
        for msgid in catalogue._catalog  # the parsed .mo: {msgid or (msgid, n): msgstr}
    } - {""}
    po_ids = {
        entry.msgid if entry.msgctxt is None else f"{entry.msgctxt}\x04{entry.msgid}"
        for entry in entries
    }
    assert compiled_ids == po_ids


# What a French shopper reads ----------------------------------------------------------


@pytest.mark.django_db
def test_the_button_renders_in_french():
    product = Product.objects.create(name="Chemise")
    make_garment(product, name="Chemise rayée")
    with translation.override("fr"):
        output = render("{% tryon_button product %}", product=product)
    assert ">Essayer</span>" in output
    assert "Essayer Chemise rayée" in output
    assert 'aria-label="Fermer"' in output
    assert "Envoyer ma photo" in output
    assert "Choisir une photo" in output
    assert "Try it on" not in output
    assert "Send my photo" not in output
    # The script's words come from the page, translated there.
    messages = config_of(output)["messages"]
    assert messages["sending"] == "Envoi de votre photo…"
    assert messages["empty"] == "Le fichier est vide. Choisissez une photo (JPEG, PNG ou WebP)."
    assert messages["elapsed"] == "Temps écoulé\u00a0: {elapsed}"
    assert "{width}" in messages["tooSmall"] and messages["tooSmall"].startswith("Cette image")


@pytest.mark.django_db
def test_the_button_stays_english_without_a_french_locale():
    product = Product.objects.create(name="Shirt")
    make_garment(product)
    output = render("{% tryon_button product %}", product=product)
    assert ">Try it on</span>" in output
    assert ">Essayer</span>" not in output


@pytest.mark.django_db
@WITH_LOCALE_MIDDLEWARE
def test_an_api_refusal_follows_the_browser_language(client, garment):
    response = post_job(client, garment, consent="false", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")
    assert response.status_code == 400
    assert response["Content-Language"] == "fr"
    error = response.json()["error"]
    assert error["code"] == "consent_required"
    assert error["message"] == (
        "Veuillez accepter que votre photo soit envoyée au service d\u2019essayage\u00a0: "
        "c\u2019est nécessaire pour créer l\u2019image."
    )

    english = post_job(client, garment, consent="false", HTTP_ACCEPT_LANGUAGE="en")
    assert english.json()["error"]["message"].startswith("Please agree to your photo")


@pytest.mark.django_db
@WITH_LOCALE_MIDDLEWARE
def test_an_unknown_job_is_answered_in_french(client):
    response = client.get(
        job_url("00000000-0000-0000-0000-000000000001"), HTTP_ACCEPT_LANGUAGE="fr"
    )
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "not_found",
        "message": "Cet essayage n\u2019existe pas, ou il a été commencé dans un autre navigateur "
        "ou un autre compte.",
    }


@pytest.mark.django_db
def test_without_locale_middleware_the_active_language_is_used(client, garment):
    # A shop that activates the language itself (no LocaleMiddleware) gets the same.
    with translation.override("fr"):
        response = post_job(client, garment, consent="false")
    assert response.json()["error"]["message"].startswith("Veuillez accepter")


@pytest.mark.django_db
@WITH_LOCALE_MIDDLEWARE
def test_a_failed_job_reads_in_the_shoppers_language(client, garment):
    created = post_job(client, garment)
    assert created.status_code == 201, created.content
    job_id = created.json()["id"]
    # As the worker leaves it: the message stored in the site's language.
    TryOnJob.objects.filter(pk=job_id).update(
        status="failed",
        error_code="task_failed",
        error_message=str(message_for("task_failed")),
    )
    answer = client.get(job_url(job_id), HTTP_ACCEPT_LANGUAGE="fr").json()
    assert answer["error"] == {
        "code": "task_failed",
        "message": "Le service d\u2019essayage n\u2019a pas pu cr\u00e9er d\u2019image avec "
        "cette photo et ce v\u00eatement. Essayez une autre photo.",
    }
    english = client.get(job_url(job_id), HTTP_ACCEPT_LANGUAGE="en").json()
    assert english["error"]["message"] == str(message_for("task_failed"))

    # A code this app does not know (a custom backend's) keeps the stored words.
    TryOnJob.objects.filter(pk=job_id).update(
        error_code="studio_closed", error_message="The studio is closed today."
    )
    answer = client.get(job_url(job_id), HTTP_ACCEPT_LANGUAGE="fr").json()
    assert answer["error"] == {"code": "studio_closed", "message": "The studio is closed today."}
