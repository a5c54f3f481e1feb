"""The example shop: its pages render with the try-on button, and its demo data
command can run again without harm.

The shop has settings of its own, so it runs in a child process with a
throw-away database and media folder; the child reports back as JSON.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "example_project"

CHILD = r"""
import io, json, os
import django
django.setup()
from django.core.management import call_command
from django.contrib.auth.models import User
from django.test import Client
from PIL import Image
from django_tryon.models import Garment, ModelPhoto
from shop.models import Product

def files():
    root = os.environ["TRYON_DEMO_MEDIA"]
    return sorted(
        os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs
    )

def counts():
    return {"products": Product.objects.count(), "garments": Garment.objects.count(),
            "model_photos": ModelPhoto.objects.count(), "files": len(files())}

call_command("migrate", verbosity=0)
out = io.StringIO()
call_command("load_demo_data", stdout=out)
report = {"first": out.getvalue(), "after_first": counts(), "files_first": files()}
out = io.StringIO()
call_command("load_demo_data", stdout=out)
report.update(second=out.getvalue(), after_second=counts(), files_second=files())

client = Client()
product = Product.objects.get(slug="straight-jeans")
garment = Garment.objects.get_for(product)
report["garment"] = {"id": garment.pk, "clothes_type": garment.clothes_type}
report["linked"] = sorted(str(g.product) for g in Garment.objects.all())
report["offered"] = sorted(ModelPhoto.objects.offered().values_list("name", flat=True))
pages = [("list", "/"), ("detail", product.get_absolute_url()), ("privacy", "/privacy/"),
         ("missing", "/products/no-such-thing/"), ("no_sample", "/sample-photos/nobody.jpg")]
for name, url in pages:
    response = client.get(url)
    report[name] = {"status": response.status_code, "html": response.content.decode()}
sample = client.get("/sample-photos/ava.jpg")
with Image.open(io.BytesIO(sample.content)) as image:
    report["sample"] = {"status": sample.status_code, "type": sample["Content-Type"],
                        "size": list(image.size)}
from django.core.checks import run_checks
report["checks"] = [m.id for m in run_checks() if m.id.startswith("django_tryon")]
User.objects.create_superuser("boss", "boss@example.com", "pw")
client.login(username="boss", password="pw")
response = client.get("/admin/shop/product/")
report["admin"] = {"status": response.status_code, "html": response.content.decode()}
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("shop")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "TRYON_DEMO_DB": str(workdir / "db.sqlite3"),
        "TRYON_DEMO_MEDIA": str(workdir / "media"),
    }
    result = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=SHOP, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_load_demo_data_creates_the_catalogue(shop):
    assert shop["after_first"] == {"products": 5, "garments": 5, "model_photos": 4, "files": 14}
    assert "product breton-tshirt" in shop["first"]
    # Two of the models are offered to shoppers with no photo at hand, in the dialog too.
    assert shop["offered"] == ["Sample model Ava", "Sample model Ben"]
    assert shop["detail"]["html"].count('name="model_photo"') == 2
    assert shop["garment"]["clothes_type"] == "lower_body"
    assert shop["linked"] == sorted(
        [
            "Breton striped T-shirt",
            "Coral floral dress",
            "Green polka-dot skirt",
            "Red gingham shirt",
            "Straight-leg jeans",
        ]
    )


def test_the_shop_passes_every_tryon_check(shop):
    # SQLite in IMMEDIATE mode among them: the worker and the web server write at once.
    assert shop["checks"] == []


def test_load_demo_data_again_changes_nothing(shop):
    assert shop["after_second"] == shop["after_first"]
    assert shop["files_second"] == shop["files_first"]  # no new or orphaned file
    assert "nothing new" in shop["second"]
    assert "Already there: 14" in shop["second"]


def test_the_catalogue_lists_every_product_with_its_picture(shop):
    page = shop["list"]
    assert page["status"] == 200
    for name in ("Breton striped T-shirt", "Straight-leg jeans", "Coral floral dress"):
        assert name in page["html"]
    assert page["html"].count('href="/products/') == 5
    assert page["html"].count('src="/media/products/') == 5
    assert "shop/shop.css" in page["html"]


def test_a_product_page_has_the_try_on_button_for_its_garment(shop):
    page = shop["detail"]
    assert page["status"] == 200
    assert "Straight-leg jeans" in page["html"]
    assert f'data-garment-id="{shop["garment"]["id"]}"' in page["html"]
    assert page["html"].count("django_tryon/tryon.js") == 1
    assert "/sample-photos/ava.jpg" in page["html"]


def test_the_privacy_page_the_button_links_to_exists(shop):
    assert shop["privacy"]["status"] == 200
    assert "/privacy/" in shop["detail"]["html"]


def test_unknown_products_and_samples_are_404(shop):
    assert shop["missing"]["status"] == 404
    assert shop["no_sample"]["status"] == 404


def test_sample_photos_are_served_for_visitors(shop):
    assert shop["sample"] == {"status": 200, "type": "image/jpeg", "size": [768, 1536]}


def test_the_admin_lists_products_with_their_garment(shop):
    assert shop["admin"]["status"] == 200
    assert "Polka" in shop["admin"]["html"] or "polka" in shop["admin"]["html"]
    assert shop["admin"]["html"].count("icon-yes.svg") == 5


@pytest.mark.parametrize(
    ("provider", "backend"),
    [
        (None, "django_tryon.backends.ailab.AILabBackend"),
        ("fashn", "django_tryon.backends.fashn.FashnBackend"),
    ],
)
def test_the_shop_talks_to_the_provider_demo_provider_names(provider, backend):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "example_project.settings"}
    env.pop("DEMO_PROVIDER", None)
    if provider:
        env["DEMO_PROVIDER"] = provider
    child = "from django.conf import settings; print(settings.TRYON['BACKEND'])"
    result = subprocess.run(
        [sys.executable, "-c", child], cwd=SHOP, env=env, capture_output=True, text=True
    )
    assert result.stdout.strip() == backend, result.stderr


def test_the_demo_refuses_a_provider_the_sandbox_does_not_speak():
    env = {**os.environ, "DEMO_PROVIDER": "kling", "DEMO_PORT": "0"}
    result = subprocess.run(
        [sys.executable, "scripts/demo.py"],
        cwd=SHOP.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "DEMO_PROVIDER is 'kling'; use one of: ailab, fashn." in result.stderr
