"""Oscar's shop in Chromium, as ``make demo-oscar`` runs it: a shopper tries a garment on
from Oscar's product page; staff make catalogue pictures, publish one to the product's
gallery and take it back; Ctrl-C stops everything."""

import re

from playwright.sync_api import expect

RESULT_TIMEOUT = 60_000  # ms: the sandbox takes a second, the worker polls every second


def open_product(page, demo, title):
    """From Oscar's catalogue page to a product's page, by its link, as a shopper goes."""
    page.goto(f"{demo.url}/catalogue/")
    page.get_by_role("link", name=title).first.click()
    page.get_by_role("heading", name=title, level=1).wait_for()


def test_a_shopper_tries_a_garment_on_from_oscars_product_page(demo, page, person_photo):
    open_product(page, demo, "Breton striped T-shirt")
    # Oscar's page, with the button in the product's column, under the price.
    assert page.locator(".product_main .price_color").is_visible()
    page.locator(".product_main").get_by_role("button", name="Try it on").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for(state="visible")
    assert dialog.get_by_role("heading").inner_text() == "Try on Breton striped T-shirt"
    dialog.locator("input[type=file]").first.set_input_files(str(person_photo))
    dialog.get_by_role("img", name="Your photo").wait_for(state="visible")
    dialog.get_by_label("I agree that my photo is sent").check()
    dialog.get_by_role("button", name="Send my photo").click()
    result = dialog.locator("[data-tryon-result-image]")
    result.wait_for(state="visible", timeout=RESULT_TIMEOUT)
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=result.element_handle()
    )
    assert result.get_attribute("alt") == "You wearing Breton striped T-shirt"


def test_a_product_that_is_not_a_garment_has_no_button(demo, page):
    open_product(page, demo, "Canvas tote bag")
    assert page.locator(".product_main .price_color").is_visible()
    assert page.locator("[data-tryon]").count() == 0


def sign_in_to_the_admin(page, demo):
    page.goto(f"{demo.url}/admin/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("tryon-demo")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("button", name="Log out").wait_for()


def gallery_slides(page, demo, title):
    open_product(page, demo, title)
    return page.locator("#product_gallery .carousel-item").count()


def test_staff_publish_a_catalogue_picture_to_the_gallery_and_take_it_back(demo, page):
    sign_in_to_the_admin(page, demo)
    # The dashboard's "Try-on" menu leads to the garments.
    page.goto(f"{demo.url}/dashboard/")
    page.get_by_role("button", name="Try-on", exact=True).click()
    page.get_by_role("link", name="Garments", exact=True).click()
    page.wait_for_url(re.compile(r".*/admin/django_tryon/garment/.*"))

    # Choose one product's garment, generate with one model photo: one paid request.
    row = page.locator("#result_list tr", has_text="Coral floral dress")
    row.locator("input.action-select").check()
    page.locator("select[name=action]").select_option("generate_tryon_pictures")
    page.get_by_role("button", name="Go", exact=True).click()
    page.get_by_text("Sample model Ava").click()
    expect(page.locator("#tryon-call-count")).to_have_text("1")
    page.get_by_role("button", name="Yes, generate").click()
    expect(page.get_by_text("1 try-on job was queued")).to_be_visible()

    # Review: wait until the worker has made it, then publish it.
    jobs = f"{demo.url}/admin/django_tryon/tryonjob/?source__exact=admin&status__exact=succeeded"
    for _ in range(60):
        page.goto(jobs)
        if page.locator("#result_list tbody tr").count():
            break
        page.wait_for_timeout(1000)
    assert page.locator("#result_list tbody tr").count() == 1
    page.locator("#result_list tbody tr input.action-select").check()
    page.locator("select[name=action]").select_option("publish_pictures")
    page.get_by_role("button", name="Go", exact=True).click()
    expect(page.get_by_text("1 picture was published to its product's gallery.")).to_be_visible()
    assert gallery_slides(page, demo, "Coral floral dress") == 2  # its own image and ours

    page.goto(jobs)
    page.locator("#result_list tbody tr input.action-select").check()
    page.locator("select[name=action]").select_option("unpublish_pictures")
    page.get_by_role("button", name="Go", exact=True).click()
    expect(page.get_by_text("1 picture was taken out of its product's gallery.")).to_be_visible()
    assert gallery_slides(page, demo, "Coral floral dress") == 1
