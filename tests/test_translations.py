"""The French catalogue: complete, compiled, and what a French shopper reads.

The catalogue is read from the installed package (``django_tryon.__file__``), so
this file also proves, when the suite runs against the built wheel, that the
wheel carries the ``.po``, the ``.pot`` and the compiled ``.mo``.
"""

import gettext
import re
from pathlib import Path

import polib
import pytest
from django.test import override_settings
from django.utils import translation

import django_tryon
from tests.api_helpers import (
    fresh_throttle_cache,  # noqa: F401  (autouse fixture)
    job_url,
    post_job,
)
from tests.test_templatetag import config_of, make_garment, render
from tests.testapp.models import Product

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


def entries(path):
    return [entry for entry in polib.pofile(str(path)) if not entry.obsolete]


def key(entry):
    return (entry.msgctxt, entry.msgid, entry.msgid_plural)


def translations_of(entry):
    if entry.msgid_plural:
        return [entry.msgstr_plural[index] for index in sorted(entry.msgstr_plural)]
    return [entry.msgstr]


# The catalogue ------------------------------------------------------------------------


def test_the_template_and_the_french_catalogue_have_the_same_messages():
    template = {key(entry) for entry in entries(TEMPLATE)}
    french = {key(entry) for entry in entries(FRENCH_PO)}
    assert len(template) > 200
    assert template - french == set(), "messages of the template missing from the .po"
    assert french - template == set(), "messages of the .po no longer in the template"


def test_every_french_message_is_translated_and_none_is_fuzzy():
    catalogue = polib.pofile(str(FRENCH_PO))
    assert not catalogue.metadata_is_fuzzy
    assert catalogue.metadata["Language"] == "fr"
    assert "nplurals=2; plural=(n > 1);" in catalogue.metadata["Plural-Forms"]
    fuzzy = [entry.msgid for entry in catalogue if "fuzzy" in entry.flags]
    assert fuzzy == []
    untranslated = [entry.msgid for entry in entries(FRENCH_PO) if not all(translations_of(entry))]
    assert untranslated == []
    for entry in entries(FRENCH_PO):
        if entry.msgid_plural:
            assert len(entry.msgstr_plural) == 2, entry.msgid


def test_every_translation_keeps_the_placeholders_of_its_message():
    for entry in entries(FRENCH_PO):
        originals = [entry.msgid, entry.msgid_plural] if entry.msgid_plural else [entry.msgid]
        expected = set()
        for original in originals:
            expected |= set(PLACEHOLDER.findall(original))
        for translated in translations_of(entry):
            found = set(PLACEHOLDER.findall(translated))
            # A singular may leave out the count ("one picture"), never add a placeholder.
            assert found <= expected, (entry.msgid, translated)
            if not entry.msgid_plural:
                assert found == expected, (entry.msgid, translated)


def test_the_committed_mo_is_compiled_from_the_po():
    with FRENCH_MO.open("rb") as compiled:
        catalogue = gettext.GNUTranslations(compiled)
    assert catalogue.info()["language"] == "fr"
    for entry in entries(FRENCH_PO):
        if entry.msgctxt:
            singular = catalogue.npgettext if entry.msgid_plural else catalogue.pgettext
            context = (entry.msgctxt,)
        else:
            singular = catalogue.ngettext if entry.msgid_plural else catalogue.gettext
            context = ()
        if entry.msgid_plural:
            for count, index in ((1, 0), (2, 1)):
                got = singular(*context, entry.msgid, entry.msgid_plural, count)
                assert got == entry.msgstr_plural[index], (entry.msgid, "recompile the .mo")
        else:
            assert singular(*context, entry.msgid) == entry.msgstr, (
                entry.msgid,
                "recompile the .mo",
            )
    # No message left in the .mo that the .po no longer has (the header is the "" key).
    compiled_ids = {
        msgid[0] if isinstance(msgid, tuple) else msgid
        for msgid in catalogue._catalog  # the parsed .mo: {msgid or (msgid, n): msgstr}
    } - {""}
    po_ids = {
        (f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid)
        for entry in entries(FRENCH_PO)
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
