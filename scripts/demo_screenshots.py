"""Screenshots of the example shop for the docs: catalogue, product page, a try-on result.

    python scripts/demo_screenshots.py [--chromium /usr/bin/chromium] [--out docs/images]

Starts the demo on free ports with a throw-away database (see
``scripts/demo_smoke.py``), then drives Chromium with Playwright (neither is a
dependency of django-tryon: install ``playwright`` and a Chromium to use this)
through a shopper's try-on, and writes ``example-shop-catalogue.png``,
``example-shop-product.png`` and ``example-shop-result.png``.
"""

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
VIEWPORT = {"width": 1200, "height": 800}


def _smoke():
    spec = importlib.util.spec_from_file_location("demo_smoke", ROOT / "scripts" / "demo_smoke.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shoot(page, path):
    page.screenshot(path=str(path))
    # Fewer colours: the pictures stay small in the repository.
    with Image.open(path) as image:
        image.convert("RGB").quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)
    print(f"Wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"))
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    smoke = _smoke()
    out = Path(args.out)
    with tempfile.TemporaryDirectory(prefix="tryon-demo-shots-") as workdir:
        process, shop_url, _ = smoke.start_demo([sys.executable, "scripts/demo.py"], workdir)
        try:
            photo = Path(workdir) / "me.jpg"
            from django_tryon.sandbox import samples

            photo.write_bytes(samples.encode(samples.model_photo("chloe", seed=1)))
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=args.chromium, args=["--no-sandbox"], headless=True
                )
                page = browser.new_page(viewport=VIEWPORT)
                page.set_default_timeout(60_000)
                page.goto(shop_url)
                shoot(page, out / "example-shop-catalogue.png")
                page.goto(shop_url + "products/floral-dress/")
                shoot(page, out / "example-shop-product.png")
                page.click("[data-tryon-open]")
                page.set_input_files("input[name=person_image]", str(photo))
                page.check("[data-tryon-consent]")
                page.click("[data-tryon-submit]")
                page.wait_for_selector("[data-tryon-result-image][src]", state="visible")
                page.wait_for_function(
                    "document.querySelector('[data-tryon-result-image]').complete"
                )
                shoot(page, out / "example-shop-result.png")
                browser.close()
        finally:
            smoke.stop_demo(process)


if __name__ == "__main__":
    main()
