"""The button on Oscar's product page, rendered with Oscar's own templates; the block a
shop moves it with; the dashboard's "Try-on" menu."""

from django.contrib.auth.models import Permission
from django.urls import reverse

from django_tryon.models import Garment

BUTTON = "data-tryon-config="


def test_the_product_page_has_the_button_under_the_price(client, catalogue):
    product = catalogue.product("Breton T-shirt")
    garment = Garment.objects.for_object(product).get()
    response = client.get(product.get_absolute_url())
    assert response.status_code == 200
    assert "oscar/catalogue/detail.html" in [t.name for t in response.templates]
    page = response.content.decode()
    assert page.count(BUTTON) == 1
    assert f'data-garment-id="{garment.pk}"' in page
    # Inside Oscar's product column, after the price and availability.
    main = page.index('class="col-sm-6 product_main"')
    price = page.index('class="price_color"', main)
    assert main < price < page.index('class="tryon-oscar', price)
    assert page.index("<h1>Breton T-shirt</h1>") < price


def test_a_product_that_is_not_a_garment_has_no_button(client, catalogue):
    mug = catalogue.product("Mug", category="Kitchen", product_class="Mugs")
    page = client.get(mug.get_absolute_url()).content.decode()
    assert 'class="col-sm-6 product_main"' in page
    assert BUTTON not in page
    assert "tryon-oscar" not in page  # not even an empty wrapper


def test_a_product_whose_garment_staff_turned_off_has_no_button(client, catalogue):
    product = catalogue.product()
    Garment.objects.for_object(product).update(is_active=False)
    assert BUTTON not in client.get(product.get_absolute_url()).content.decode()


def test_a_shop_moves_the_button_with_the_tryon_block(client, catalogue, settings, tmp_path):
    templates = tmp_path / "templates" / "oscar" / "catalogue"
    templates.mkdir(parents=True)
    (templates / "detail.html").write_text(
        '{% extends "oscar/catalogue/detail.html" %}{% load tryon %}'
        "{% block tryon %}{% endblock %}"
        "{% block product_description %}"
        '<div id="moved">{% tryon_button product label="Try it on you" %}</div>'
        "{{ block.super }}{% endblock %}"
    )
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [str(tmp_path / "templates")]},
    ]
    product = catalogue.product()
    page = client.get(product.get_absolute_url()).content.decode()
    assert page.count(BUTTON) == 1
    assert "tryon-oscar" not in page
    assert page.index('<div id="moved">') < page.index(BUTTON)
    assert "Try it on you" in page


def test_the_dashboard_menu_leads_staff_to_the_try_on_pages(client, django_user_model, catalogue):
    staff = django_user_model.objects.create_user(
        username="staff", email="staff@example.com", password="x", is_staff=True
    )
    staff.user_permissions.set(
        Permission.objects.filter(
            codename__in=["view_garment", "view_tryonjob", "change_product", "view_product"]
        )
    )
    client.force_login(staff)
    page = client.get(reverse("dashboard:index")).content.decode()
    assert "Try-on" in page
    assert reverse("admin:django_tryon_garment_changelist") in page
    assert reverse("admin:django_tryon_tryonjob_overview") in page
    # Model photos need their own permission.
    assert reverse("admin:django_tryon_modelphoto_changelist") not in page
    assert client.get(reverse("admin:django_tryon_garment_changelist")).status_code == 200


def test_the_garment_list_links_each_garment_to_its_oscar_product(admin_client, catalogue):
    product = catalogue.product("Breton T-shirt")
    page = admin_client.get(reverse("admin:django_tryon_garment_changelist")).content.decode()
    assert reverse("admin:catalogue_product_change", args=[product.pk]) in page
