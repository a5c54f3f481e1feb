"""``{% tryon_button %}`` and ``{% tryon_assets %}``: what a product page gets."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template import Context, Engine
from django.test import RequestFactory
from django.urls import reverse

from django_tryon import images
from django_tryon.models import ACTIVE_STATUSES, TERMINAL_STATUSES
from django_tryon.templatetags.tryon import JOB_ID_PLACEHOLDER
from tests.support.images import make_image_bytes
from tests.support.templatetag import config_of, make_garment, render
from tests.testapp.models import Product

pytestmark = pytest.mark.django_db


def test_product_without_garment_renders_nothing():
    product = Product.objects.create(name="Socks")
    assert render("{% tryon_button product %}", product=product) == ""


def test_product_whose_garment_is_inactive_renders_nothing():
    product = Product.objects.create(name="Socks")
    make_garment(product, is_active=False)
    assert render("{% tryon_button product %}", product=product) == ""


def test_nothing_for_none():
    assert render("{% tryon_button product %}", product=None) == ""


def test_product_gets_the_button_for_its_active_garment():
    product = Product.objects.create(name="Shirt")
    other = Product.objects.create(name="Jeans")
    make_garment(other, name="Jeans")
    garment = make_garment(product)
    output = render("{% tryon_button product %}", product=product)
    assert f'data-garment-id="{garment.pk}"' in output
    assert config_of(output)["garmentId"] == garment.pk
    assert "<dialog" in output
    assert ">Try it on</span>" in output
    assert "Try on Striped T-shirt" in output


def test_a_garment_can_be_passed_directly():
    garment = make_garment()
    output = render("{% tryon_button garment %}", garment=garment)
    assert config_of(output)["garmentId"] == garment.pk


def test_garment_name_is_escaped():
    product = Product.objects.create(name="Shirt")
    make_garment(product, name='<script>alert("x")</script>')
    output = render("{% tryon_button product %}", product=product)
    assert '<script>alert("x")' not in output
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in output


def test_label_override():
    product = Product.objects.create(name="Shirt")
    make_garment(product)
    output = render("{% tryon_button product label='See it on you' %}", product=product)
    assert ">See it on you</span>" in output
    assert ">Try it on</span>" not in output
    # A translatable label, as the docs show it.
    output = render("{% tryon_button product label=_('See it on you') %}", product=product)
    assert ">See it on you</span>" in output
    # A label from a variable (say, a CMS field) is escaped.
    output = render("{% tryon_button product label=text %}", product=product, text="<b>On</b>")
    assert ">&lt;b&gt;On&lt;/b&gt;</span>" in output


def test_assets_are_emitted_once_for_two_buttons():
    shirt = Product.objects.create(name="Shirt")
    jeans = Product.objects.create(name="Jeans")
    make_garment(shirt)
    make_garment(jeans, name="Jeans")
    output = render("{% tryon_button shirt %}{% tryon_button jeans %}", shirt=shirt, jeans=jeans)
    assert output.count("django_tryon/tryon.js") == 1
    assert output.count("django_tryon/tryon.css") == 1
    assert output.count("<dialog") == 2
    ids = re.findall(r' id="([^"]+)"', output)
    assert len(ids) == len(set(ids)), "element ids must be unique on the page"


def test_assets_are_emitted_once_across_includes_without_a_request():
    shirt = Product.objects.create(name="Shirt")
    make_garment(shirt)
    engine = Engine(
        loaders=[
            (
                "django.template.loaders.locmem.Loader",
                {
                    "page.html": "{% load tryon %}{% tryon_button shirt %}"
                    "{% include 'card.html' %}{% include 'card.html' only with shirt=shirt %}",
                    "card.html": "{% load tryon %}{% tryon_button shirt %}",
                },
            ),
            "django.template.loaders.app_directories.Loader",
        ],
        libraries={"tryon": "django_tryon.templatetags.tryon", "i18n": "django.templatetags.i18n"},
    )
    output = engine.get_template("page.html").render(Context({"shirt": shirt}))
    assert output.count("<dialog") == 3
    assert output.count("django_tryon/tryon.js") == 1
    ids = re.findall(r' id="([^"]+)"', output)
    assert len(ids) == len(set(ids))


def test_assets_are_emitted_once_per_request_across_renders():
    shirt = Product.objects.create(name="Shirt")
    make_garment(shirt)
    request = RequestFactory().get("/")
    first = render("{% tryon_button shirt %}", request=request, shirt=shirt)
    second = render("{% tryon_button shirt %}", request=request, shirt=shirt)
    assert "django_tryon/tryon.js" in first
    assert "django_tryon/tryon.js" not in second
    assert re.search(r'id="(tryon-[^"]+)"', first).group(1) != re.search(
        r'id="(tryon-[^"]+)"', second
    ).group(1)
    # Another request gets them again.
    assert "django_tryon/tryon.js" in render("{% tryon_button shirt %}", shirt=shirt)


def test_tryon_assets_in_head_means_buttons_emit_none():
    shirt = Product.objects.create(name="Shirt")
    make_garment(shirt)
    output = render("<head>{% tryon_assets %}</head>{% tryon_button shirt %}", shirt=shirt)
    head, body = output.split("</head>")
    assert '<script src="/static/django_tryon/tryon.js" defer></script>' in head
    assert '<link rel="stylesheet" href="/static/django_tryon/tryon.css">' in head
    assert "tryon.js" not in body
    assert render("{% tryon_assets %}{% tryon_assets %}").count("tryon.css") == 1


def test_privacy_link_beside_the_consent_box(settings):
    settings.TRYON = {**settings.TRYON, "PRIVACY_URL": "/privacy/#photos"}
    garment = make_garment()
    output = render("{% tryon_button garment %}", garment=garment)
    assert 'type="checkbox"' in output
    assert 'href="/privacy/#photos"' in output
    assert config_of(output)["requireConsent"] is True


def test_no_privacy_link_when_none_is_set():
    garment = make_garment()
    output = render("{% tryon_button garment %}", garment=garment)
    assert "tryon-consent__privacy" not in output


def test_no_consent_box_when_consent_is_not_required(settings):
    settings.TRYON = {**settings.TRYON, "REQUIRE_CONSENT": False}
    garment = make_garment()
    output = render("{% tryon_button garment %}", garment=garment)
    assert 'type="checkbox"' not in output
    assert config_of(output)["requireConsent"] is False


def test_csrf_token_is_in_the_form():
    garment = make_garment()
    output = render("{% tryon_button garment %}", garment=garment)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', output)
    assert token and len(token.group(1)) == 64


def test_api_urls_are_reversed():
    garment = make_garment()
    config = config_of(render("{% tryon_button garment %}", garment=garment))
    assert config["jobsUrl"] == reverse("django_tryon:job-list")
    job_id = "6f1c6a53-7f1e-4c55-9a55-0c4f5d3d1a20"
    assert config["jobUrl"].replace(config["jobIdPlaceholder"], job_id) == reverse(
        "django_tryon:job-detail", kwargs={"pk": job_id}
    )
    assert config["jobIdPlaceholder"] == JOB_ID_PLACEHOLDER


@pytest.mark.parametrize("heif", [True, False])
def test_file_input_accepts_what_the_intake_accepts(monkeypatch, heif):
    monkeypatch.setattr(images, "heif_available", lambda: heif)
    garment = make_garment()
    output = render("{% tryon_button garment %}", garment=garment)
    config = config_of(output)
    if heif:
        assert 'accept="image/jpeg,image/png,image/webp,image/heic,image/heif"' in output
        assert "image/heic" not in config["refusedTypes"]
        # Browsers that cannot decode HEIC send it as it is: the intake reads it.
        assert config["sendAsIsTypes"] == ["image/heic", "image/heif"]
    else:
        assert 'accept="image/jpeg,image/png,image/webp"' in output
        assert config["refusedTypes"]["image/heic"] == "HEIF"
        assert config["sendAsIsTypes"] == []
    assert config["refusedTypes"]["image/gif"] == "GIF"


def test_the_photo_is_scaled_to_the_intakes_size(settings):
    settings.TRYON = {"INTAKE_MAX_SIDE": 1600, "MIN_IMAGE_SIDE": 300}
    config = config_of(render("{% tryon_button garment %}", garment=make_garment()))
    assert config["intakeMaxSide"] == 1600
    assert config["minImageSide"] == 300


def test_the_status_lists_come_from_the_server():
    # The script keeps no list of its own: the worker's own lists, as they are.
    config = config_of(render("{% tryon_button garment %}", garment=make_garment()))
    assert config["statuses"] == {
        "working": [str(status) for status in ACTIVE_STATUSES],
        "final": [str(status) for status in TERMINAL_STATUSES],
    }
    assert "pending" in config["statuses"]["working"]
    assert "succeeded" in config["statuses"]["final"]


def test_size_message_is_the_servers(client, settings):
    settings.TRYON = {**settings.TRYON, "MAX_UPLOAD_BYTES": 1000}
    garment = make_garment()
    config = config_of(render("{% tryon_button garment %}", garment=garment))
    assert config["maxUploadBytes"] == 1000
    photo = SimpleUploadedFile("me.jpg", make_image_bytes((400, 800)), "image/jpeg")
    response = client.post(
        config["jobsUrl"], {"garment": garment.pk, "person_image": photo, "consent": "true"}
    )
    assert response.status_code in (400, 413)
    assert response.json()["error"]["message"] == config["messages"]["tooLarge"]


def test_not_an_image_message_is_the_servers(client):
    garment = make_garment()
    config = config_of(render("{% tryon_button garment %}", garment=garment))
    text = SimpleUploadedFile("notes.txt", b"not a photo at all", "text/plain")
    response = client.post(
        config["jobsUrl"], {"garment": garment.pk, "person_image": text, "consent": "true"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == config["messages"]["notAnImage"]


def test_small_photo_message_is_the_servers_once_the_script_fills_it_in(client):
    garment = make_garment()
    config = config_of(render("{% tryon_button garment %}", garment=garment))
    photo = SimpleUploadedFile("me.png", make_image_bytes((100, 200), image_format="PNG"))
    response = client.post(
        config["jobsUrl"], {"garment": garment.pk, "person_image": photo, "consent": "true"}
    )
    assert response.status_code == 400
    filled = config["messages"]["tooSmall"].replace("{width}", "100").replace("{height}", "200")
    assert response.json()["error"]["message"] == filled


def test_a_shop_overrides_the_template(settings, tmp_path):
    override = tmp_path / "django_tryon" / "button.html"
    override.parent.mkdir(parents=True)
    override.write_text(
        '<a class="shop-tryon" data-garment="{{ garment.pk }}">{{ label }}</a>{{ assets }}'
    )
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    garment = make_garment()
    output = render("{% tryon_button garment label='Wear it' %}", garment=garment)
    assert output.startswith(f'<a class="shop-tryon" data-garment="{garment.pk}">Wear it</a>')
    assert "django_tryon/tryon.js" in output
