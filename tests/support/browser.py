"""The Try it on dialog in a Playwright page, as the browser tests drive it."""

RESULT_TIMEOUT = 40_000  # ms: the sandbox takes 2 s, the worker polls every 0.5 s


def events(page):
    """The analytics events the page has sent (recorded by the browser conftest's script)."""
    return page.evaluate("window.tryonEvents")


def open_dialog(page):
    """Press "Try it on" and return the dialog once it shows."""
    page.get_by_role("button", name="Try it on").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for(state="visible")
    return dialog


def wait_for_result(dialog):
    """The result picture, once shown and decoded."""
    result = dialog.locator("[data-tryon-result-image]")
    result.wait_for(state="visible", timeout=RESULT_TIMEOUT)
    dialog.page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=result.element_handle()
    )
    return result
