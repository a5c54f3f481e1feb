"""A shopper with no photo at hand tries the garment on one of the shop's models, from
the keyboard, and a second shopper who picks the same model gets the same picture."""

from tests.support.browser import events, open_dialog, wait_for_result

MODELS_LEGEND = "No photo at hand? Try it on one of our models:"


def test_a_model_photo_from_the_keyboard_to_the_result(shop, page, browser):
    page.goto(shop.product_url())
    dialog = open_dialog(page)
    # A labelled group of radios, one per offered model, named by the model.
    group = dialog.get_by_role("group", name=MODELS_LEGEND)
    assert [
        radio.evaluate("radio => radio.labels[0].textContent.trim()")
        for radio in group.get_by_role("radio").all()
    ] == ["Sample model Ava", "Sample model Ben"]
    consent = dialog.get_by_label("I agree that my photo is sent")
    assert consent.is_visible()

    def tab_to(predicate):
        for _ in range(15):
            if page.evaluate(f"(element => {predicate})(document.activeElement)"):
                return
            page.keyboard.press("Tab")
        raise AssertionError(f"Tab never reached {predicate}")

    # The group is one tab stop; the arrow keys pick a model, as in any radio group.
    tab_to("element.name === 'model_photo'")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowLeft")
    ava = group.get_by_role("radio", name="Sample model Ava")
    assert ava.is_checked()
    ava_id = int(ava.get_attribute("value"))
    assert page.locator("[data-tryon-live]").inner_text() == (
        "Sample model Ava chosen. Send it to try the garment on."
    )
    # Nothing of the shopper's is sent: no consent is asked, and the button says so.
    assert not consent.is_visible()
    tab_to("element.type === 'submit'")
    assert page.evaluate("document.activeElement.innerText") == "Try it on this model"
    page.keyboard.press("Enter")

    result = wait_for_result(dialog)
    assert result.get_attribute("alt") == "Sample model Ava wearing Breton striped T-shirt"
    # The result's heading takes focus, so a screen reader reads it first.
    assert page.evaluate("document.activeElement.textContent") == "Your picture is ready"
    # The picture is the shop's: there is no photo of the shopper's to delete.
    assert not dialog.get_by_role("button", name="Delete my photos").is_visible()
    recorded = events(page)
    assert [event["type"] for event in recorded] == ["tryon:open", "tryon:submit", "tryon:success"]
    job_id = recorded[1]["detail"]["jobId"]
    job = page.request.get(f"{shop.url}/tryon/api/jobs/{job_id}/").json()
    assert job["status"] == "succeeded" and job["model_photo"] == ava_id

    # Another shopper picks the same model: the same picture, at once, no second call.
    other = browser.new_context(viewport={"width": 1200, "height": 820})
    try:
        second = other.new_page()
        second.goto(shop.product_url())
        second_dialog = open_dialog(second)
        second_dialog.get_by_text("Sample model Ava").click()  # the picture's label
        with second.expect_response("**/tryon/api/jobs/") as answer:
            second_dialog.get_by_role("button", name="Try it on this model").click()
        assert answer.value.status == 200
        assert answer.value.json()["id"] == job_id and answer.value.json()["reused"] is True
        wait_for_result(second_dialog)
        # Choosing a photo of one's own instead brings the consent box back.
        second_dialog.get_by_role("button", name="Try another photo").click()
        assert not second_dialog.get_by_role("radio", name="Sample model Ava").is_checked()
        assert second_dialog.get_by_label("I agree that my photo is sent").is_visible()
    finally:
        other.close()
