"""Linking a garment to a product in the admin: a searchable picker, not a content type
and a raw id. The picker's JSON, the form's checks, and who may see what."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from django_tryon.models import Garment
from tests.testapp.models import Product, UUIDProduct

SEARCH = "admin:django_tryon_garment_products"


@pytest.fixture
def catalogue(db):
    products = [Product.objects.create(name=f"Linen shirt {i:02d}") for i in range(23)]
    products.append(Product.objects.create(name="Wool coat"))
    other = UUIDProduct.objects.create(name="Linen dress")
    return products, other


def search(client, **params):
    response = client.get(reverse(SEARCH), params)
    assert response.status_code == 200
    return response.json()


def staff(client, django_user_model, *codenames):
    user = django_user_model.objects.create_user("staff", password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


def test_search_finds_products_of_every_linkable_model_by_their_search_fields(
    admin_client, catalogue
):
    products, other = catalogue
    found = search(admin_client, term="linen")
    # Products first (model labels in order), 20 to a page, the next page announced.
    assert [r["text"] for r in found["results"][:2]] == [
        "Linen shirt 00 (product)",
        "Linen shirt 01 (product)",
    ]
    assert found["results"][0]["id"] == f"testapp.product:{products[0].pk}"
    assert len(found["results"]) == 20
    assert found["pagination"] == {"more": True}
    second = search(admin_client, term="linen", page=2)
    assert [r["text"] for r in second["results"]] == [
        "Linen shirt 20 (product)",
        "Linen shirt 21 (product)",
        "Linen shirt 22 (product)",
        "Linen dress (uuid product)",
    ]
    assert second["results"][-1]["id"] == f"testapp.uuidproduct:{other.pk}"
    assert second["pagination"] == {"more": False}
    assert [r["text"] for r in search(admin_client, term="wool")["results"]] == [
        "Wool coat (product)"
    ]


def test_models_without_search_fields_and_djangos_own_are_not_offered(admin_client, db):
    # Users have search_fields in their admin, but are nobody's product.
    assert search(admin_client, term="admin")["results"] == []


def test_only_staff_who_may_add_or_change_garments_may_search(client, django_user_model, db):
    assert client.get(reverse(SEARCH)).status_code == 302  # to the login page
    staff(client, django_user_model, "view_garment", "view_product")
    assert client.get(reverse(SEARCH)).status_code == 403


def test_products_staff_may_not_view_are_not_offered(client, django_user_model, catalogue):
    staff(client, django_user_model, "add_garment", "view_uuidproduct")
    found = search(client, term="linen")
    assert [r["text"] for r in found["results"]] == ["Linen dress"]


def garment_data(**extra):
    return {"name": "Shirt", "clothes_type": "upper_body", "is_active": "on", **extra}


def change(client, garment, **data):
    return client.post(
        reverse("admin:django_tryon_garment_change", args=[garment.pk]), garment_data(**data)
    )


def test_choosing_a_product_links_the_garment(admin_client, garment, catalogue):
    _products, other = catalogue
    response = change(admin_client, garment, linked_product=f"testapp.uuidproduct:{other.pk}")
    assert response.status_code == 302
    garment = Garment.objects.get(pk=garment.pk)
    assert garment.product == other
    assert Garment.objects.get_for(other) == garment
    # Clearing the field unlinks it.
    assert change(admin_client, garment, linked_product="").status_code == 302
    garment.refresh_from_db()
    assert (garment.content_type_id, garment.object_id, garment.product) == (None, "", None)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("auth.user:1", "Choose a product from the list."),
        ("django_tryon.garment:1", "Choose a product from the list."),
        ("testapp.product:999999", "That product no longer exists: choose another."),
        ("testapp.uuidproduct:not-a-uuid", "That product no longer exists: choose another."),
        ("testapp.product", "Choose a product from the list."),
    ],
)
def test_a_forged_or_stale_product_is_refused(admin_client, garment, key, message):
    response = change(admin_client, garment, linked_product=key)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["linked_product"] == [message]
    garment.refresh_from_db()
    assert garment.content_type_id is None


def test_a_product_of_a_model_staff_may_not_view_is_refused(
    client, django_user_model, garment, catalogue
):
    products, _other = catalogue
    staff(client, django_user_model, "change_garment", "view_garment", "view_uuidproduct")
    response = change(client, garment, linked_product=f"testapp.product:{products[0].pk}")
    assert response.context["adminform"].form.errors["linked_product"] == [
        "Choose a product from the list."
    ]


def test_the_change_page_shows_the_picker_with_the_linked_product(admin_client, garment, catalogue):
    products, _other = catalogue
    garment.product = products[3]
    garment.save()
    page = admin_client.get(
        reverse("admin:django_tryon_garment_change", args=[garment.pk])
    ).content.decode()
    assert 'name="content_type"' not in page and 'name="object_id"' not in page
    assert f'data-ajax--url="{reverse(SEARCH)}"' in page
    assert "admin-autocomplete" in page and "admin/js/autocomplete.js" in page
    assert (
        f'<option value="testapp.product:{products[3].pk}" selected>Linen shirt 03 (product)'
        in page
    )


def test_a_link_staff_could_not_make_is_kept_when_the_garment_is_saved(
    client, django_user_model, garment, catalogue
):
    """A product staff may not view (linked by someone else) survives their edit."""
    products, _other = catalogue
    garment.product = products[0]
    garment.save()
    staff(client, django_user_model, "change_garment", "view_garment")
    response = change(client, garment, linked_product=f"testapp.product:{products[0].pk}")
    assert response.status_code == 302
    garment.refresh_from_db()
    assert garment.product == products[0]
    # But another product of that model is still out of their reach.
    response = change(client, garment, linked_product=f"testapp.product:{products[1].pk}")
    assert response.context["adminform"].form.errors["linked_product"] == [
        "Choose a product from the list."
    ]
    garment.refresh_from_db()
    assert garment.product == products[0]


@pytest.mark.parametrize(
    ("page", "first"),
    [("abc", "Linen shirt 00"), ("0", "Linen shirt 00"), ("-3", "Linen shirt 00"), ("999", None)],
)
def test_a_page_number_that_is_not_one_is_read_safely(admin_client, catalogue, page, first):
    found = search(admin_client, term="linen shirt", page=page)
    texts = [r["text"] for r in found["results"]]
    assert (texts[0].split(" (")[0] if texts else None) == first
