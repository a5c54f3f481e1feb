"""Garments made from Oscar products and kept in step with them: the mapping from
categories and product classes, the primary image, and every change a product goes
through in a shop (images, class, categories, visibility, variants, staff's choices)."""

import io
import logging

import pytest
from django.core.management import call_command
from django.db.models.fields.files import FieldFile
from django.urls import reverse
from PIL import Image

from django_tryon.contrib.oscar.models import ProductGarment
from django_tryon.contrib.oscar.sync import clothes_type_for
from django_tryon.models import Garment
from tests.support.media import stored_files
from tests.support.oscar_catalogue import jpeg


def garment_of(product):
    return Garment.objects.for_object(product).first()


def test_a_mapped_product_with_a_picture_gets_an_active_garment(catalogue, media_root):
    product = catalogue.product("Breton T-shirt", category="Clothing > Tops")
    garment = garment_of(product)
    assert garment is not None
    assert (garment.name, garment.clothes_type, garment.is_active) == (
        "Breton T-shirt",
        "upper_body",
        True,
    )
    assert garment.product == product
    # The garment's picture is its own copy, checked by the photo intake.
    source = product.primary_image().original.name
    assert garment.image.name != source
    assert {source, garment.image.name} <= stored_files(media_root)
    with garment.image.open("rb") as handle, Image.open(handle) as picture:
        assert picture.size == (600, 800)
    assert ProductGarment.objects.get(product=product).garment == garment


@pytest.mark.parametrize(
    ("breadcrumbs", "product_class", "expected"),
    [
        ("Clothing > Tops", "Clothing", "upper_body"),
        ("Clothing > Trousers and skirts", "Clothing", "lower_body"),
        ("Clothing > Dresses > Summer", "Clothing", "full_body"),  # a mapped parent covers it
        ("Gifts", "T-shirts", "upper_body"),  # no mapped category: the product class
        ("Gifts", "Mugs", None),
    ],
)
def test_the_clothes_type_comes_from_categories_then_the_product_class(
    catalogue, breadcrumbs, product_class, expected
):
    product = catalogue.product(category=breadcrumbs, product_class=product_class)
    assert clothes_type_for(product) == expected
    garment = garment_of(product)
    assert (garment.clothes_type if garment else None) == expected


def test_the_deepest_mapped_category_wins_then_the_first_listed(catalogue, settings):
    settings.TRYON_OSCAR = {
        "CATEGORIES": {"clothing": "full_body", "women/tops": "upper_body", "jeans": "lower_body"},
        "PRODUCT_CLASSES": {"clothing": "lower_body"},
    }
    product = catalogue.product(category="Women > Tops")
    assert clothes_type_for(product) == "upper_body"  # the full slug, over the class
    other_tops = catalogue.product("Men's top", category="Men > Tops")
    assert clothes_type_for(other_tops) == "lower_body"  # "women/tops" is not these tops
    both = catalogue.product("Denim top", category="Clothing > Jeans")
    with catalogue.committed():
        both.categories.add(catalogue.category("Women > Tops"))
    # Two mapped categories of the same depth: the first listed in the setting.
    assert clothes_type_for(both) == "upper_body"
    deeper = catalogue.product("Dark jeans", category="Clothing > Jeans")
    assert clothes_type_for(deeper) == "lower_body"  # deeper than "clothing"


def test_a_product_that_is_not_a_garment_has_none(catalogue):
    assert garment_of(catalogue.product("Mug", category="Kitchen", product_class="Mugs")) is None
    assert garment_of(catalogue.product("Bare T-shirt", image=False)) is None
    assert garment_of(catalogue.product("Hidden top", is_public=False)) is None
    assert not ProductGarment.objects.exists()


def test_a_picture_added_later_makes_the_garment(catalogue):
    product = catalogue.product(image=False)
    assert garment_of(product) is None
    catalogue.add_image(product)
    assert garment_of(product).is_active


def test_a_category_added_later_makes_the_garment(catalogue):
    product = catalogue.product(category="Gifts")
    assert garment_of(product) is None
    with catalogue.committed():
        catalogue.category("Clothing > Dresses").product_set.add(product)
    assert garment_of(product).clothes_type == "full_body"


def test_a_replaced_picture_replaces_the_garments_and_its_old_file(catalogue, media_root):
    product = catalogue.product()
    garment = garment_of(product)
    old_file = garment.image.name
    image = product.primary_image()
    image.original = jpeg(color=(200, 20, 20))
    catalogue.save(image)
    garment.refresh_from_db()
    assert garment.image.name != old_file
    assert old_file not in stored_files(media_root)
    with garment.image.open("rb") as handle, Image.open(handle) as picture:
        red, _green, blue = picture.convert("RGB").getpixel((10, 10))
        assert red > 150 and blue < 80


def test_a_new_primary_image_becomes_the_garments_picture(catalogue):
    product = catalogue.product()
    garment = garment_of(product)
    first_file = garment.image.name
    catalogue.add_image(product, display_order=1, color=(10, 200, 10))
    garment.refresh_from_db()
    assert garment.image.name == first_file  # a second image changes nothing
    catalogue.delete(product.primary_image())  # Oscar renumbers: the second becomes primary
    garment.refresh_from_db()
    assert garment.image.name != first_file
    assert garment.is_active


def test_a_product_that_loses_its_pictures_loses_its_button_until_one_comes_back(catalogue):
    product = catalogue.product()
    garment = garment_of(product)
    catalogue.delete(product.primary_image())
    garment.refresh_from_db()
    assert not garment.is_active  # kept: its try-ons and pictures stay
    catalogue.add_image(product)
    garment.refresh_from_db()
    assert garment.is_active


def test_a_changed_product_class_changes_the_type_or_retires_the_garment(catalogue):
    product = catalogue.product(category="Gifts", product_class="T-shirts")
    garment = garment_of(product)
    assert garment.clothes_type == "upper_body"
    catalogue.save(product, product_class=catalogue.product_class("Mugs"))
    garment.refresh_from_db()
    assert not garment.is_active
    with catalogue.committed():
        product.categories.add(catalogue.category("Clothing > Dresses"))
    garment.refresh_from_db()
    assert (garment.clothes_type, garment.is_active) == ("full_body", True)


def test_a_hidden_product_leaves_the_shopper_api(catalogue, client):
    product = catalogue.product()
    garment = garment_of(product)
    listed = client.get(reverse("django_tryon:garment-list")).json()
    assert garment.pk in {row["id"] for row in listed}
    catalogue.save(product, is_public=False)
    listed = client.get(reverse("django_tryon:garment-list")).json()
    assert garment.pk not in {row["id"] for row in listed}


def test_a_title_change_renames_the_garment_and_keeps_staffs_choice(catalogue):
    product = catalogue.product("Breton T-shirt")
    garment = garment_of(product)
    garment.is_active = False  # staff turned try-on off for this product in the admin
    garment.save()
    catalogue.save(product, title="Breton striped T-shirt")
    garment.refresh_from_db()
    assert garment.name == "Breton striped T-shirt"
    assert not garment.is_active


def test_a_garment_staff_link_to_a_product_takes_the_place_of_its_own(catalogue, garment):
    product = catalogue.product()
    own = garment_of(product)
    with catalogue.committed():
        garment.product = product  # say, a flat-lay photo of it, uploaded in the admin
        garment.save()
    own.refresh_from_db()
    assert not own.is_active
    assert Garment.objects.get_for(product) == garment
    with catalogue.committed():
        garment.product = catalogue.product("Another top", image=False)  # moved elsewhere
        garment.save()
    own.refresh_from_db()
    assert own.is_active
    assert Garment.objects.get_for(product) == own
    with catalogue.committed():
        garment.product = product
        garment.save()
    own.refresh_from_db()
    assert not own.is_active
    with catalogue.committed():
        garment.delete()
    own.refresh_from_db()
    assert own.is_active


def test_a_garment_made_from_a_product_and_deleted_by_staff_stays_deleted(catalogue):
    product = catalogue.product()
    catalogue.delete(garment_of(product))
    assert garment_of(product) is None  # until the product changes


def test_a_garment_staff_linked_themselves_is_left_alone(catalogue, garment):
    product = catalogue.product(image=False)
    garment.product = product
    garment.save()
    catalogue.add_image(product)
    catalogue.save(product, title="Renamed")
    assert list(Garment.objects.for_object(product)) == [garment]
    garment.refresh_from_db()
    assert garment.name == "Striped T-shirt"
    assert not ProductGarment.objects.exists()


def test_variants_are_tried_on_through_their_parent(catalogue):
    parent = catalogue.product("Breton T-shirt", structure="parent")
    with catalogue.committed():
        child = catalogue.Product.objects.create(
            title="Breton T-shirt, size M", structure="child", parent=parent
        )
        catalogue.ProductImage.objects.create(product=child, original=jpeg())
    assert garment_of(parent) is not None
    assert garment_of(child) is None


def test_a_picture_the_intake_refuses_makes_no_garment(catalogue, caplog):
    with caplog.at_level(logging.WARNING, logger="django_tryon.contrib.oscar"):
        product = catalogue.product(image=False)
        small = catalogue.add_image(product, size=(120, 120))  # under MIN_IMAGE_SIDE
    assert garment_of(product) is None
    assert "cannot be a garment picture" in caplog.text
    catalogue.add_image(product)  # a second picture: the primary one is still unusable
    assert garment_of(product) is None
    catalogue.delete(small)
    assert garment_of(product) is not None


def test_a_garments_picture_that_becomes_unusable_retires_it(catalogue):
    product = catalogue.product()
    garment = garment_of(product)
    image = product.primary_image()
    image.original = jpeg(size=(100, 100))
    catalogue.save(image)
    garment.refresh_from_db()
    assert not garment.is_active
    catalogue.save(product, title="Saved again")  # the same unusable picture: still off
    garment.refresh_from_db()
    assert not garment.is_active


def test_the_sync_command_makes_the_garments_of_an_existing_catalogue(catalogue, settings):
    settings.TRYON_OSCAR = {}
    tops = [catalogue.product(f"Top {n}") for n in range(3)]
    catalogue.product("Mug", category="Kitchen")
    assert not Garment.objects.exists()
    settings.TRYON_OSCAR = {"CATEGORIES": {"tops": "upper_body"}}
    out = run_command()
    assert out == "3 garments made, 0 kept in step, 1 product without a garment.\n"
    assert all(garment_of(top).is_active for top in tops)
    assert run_command() == "0 garments made, 3 kept in step, 1 product without a garment.\n"
    assert Garment.objects.count() == 3


def run_command():
    out = io.StringIO()
    call_command("tryon_oscar_sync", stdout=out)
    return out.getvalue()


def test_of_two_syncs_at_once_the_second_leaves_no_file_behind(catalogue, media_root, monkeypatch):
    from django_tryon.contrib.oscar import sync

    product = catalogue.product()
    garment = garment_of(product)
    image = product.primary_image()
    image.original = jpeg(color=(200, 20, 20))
    image.save()  # not committed through the receivers: both syncs below see the change
    # The first sync has read the link and is saving its copy of the picture when a
    # second one runs from start to end: the second writes before it.
    really_save = FieldFile.save
    winner = []

    def second_sync_writes_first(field_file, name, content, save=True):
        if not winner:
            winner.append(None)
            with catalogue.committed():
                sync.sync_product(product)
            garment.refresh_from_db()
            winner[0] = garment.image.name
        return really_save(field_file, name, content, save)

    monkeypatch.setattr(FieldFile, "save", second_sync_writes_first)
    assert sync.sync_product(product) is not None
    assert winner and winner[0]
    garment.refresh_from_db()
    assert garment.image.name == winner[0]
    garment_files = {name for name in stored_files(media_root) if name.startswith("tryon/")}
    assert garment_files == {winner[0]}


def test_a_category_emptied_from_its_side_retires_its_products_garments(catalogue):
    product = catalogue.product(category="Clothing > Dresses", product_class="Mugs")
    garment = garment_of(product)
    assert garment.is_active
    with catalogue.committed():
        product.categories.get().product_set.clear()
    garment.refresh_from_db()
    assert not garment.is_active


def test_a_busy_intake_records_nothing_and_the_next_sync_reads_the_picture(
    catalogue, monkeypatch, caplog
):
    from django_tryon.contrib.oscar import sync
    from django_tryon.images import IntakeBusy, normalise_image

    def busy(*args, **kwargs):
        raise IntakeBusy(5)

    monkeypatch.setattr(sync, "normalise_image", busy)
    with caplog.at_level(logging.WARNING, logger="django_tryon.contrib.oscar"):
        product = catalogue.product()
    assert garment_of(product) is None
    assert not ProductGarment.objects.exists()  # not taken for an unusable picture
    assert "the photo intake is busy" in caplog.text
    monkeypatch.setattr(sync, "normalise_image", normalise_image)
    assert run_command().startswith("1 garment made")
    garment = garment_of(product)
    # A busy moment while replacing the picture keeps the garment as it was.
    image = product.primary_image()
    image.original = jpeg(color=(200, 20, 20))
    monkeypatch.setattr(sync, "normalise_image", busy)
    catalogue.save(image)
    garment.refresh_from_db()
    assert garment.is_active
    assert ProductGarment.objects.get(product=product).source_name != image.original.name
    monkeypatch.setattr(sync, "normalise_image", normalise_image)
    catalogue.save(product)
    assert ProductGarment.objects.get(product=product).source_name == image.original.name
