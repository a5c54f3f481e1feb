"""Settings of the example Oscar shop: django-oscar with virtual try-on, a local demo
with the sandbox as the try-on provider. Never deploy these settings.

Environment variables (all optional): ``TRYON_DEMO_DB`` (SQLite file),
``TRYON_DEMO_MEDIA`` (uploads, product images and results), ``TRYON_SANDBOX_PORT``
(where ``manage.py tryon_sandbox`` listens, default 8765), ``TRYON_API_KEY`` and
``TRYON_BASE_URL`` (to use the real provider instead).
"""

import os
from pathlib import Path

from oscar.defaults import *  # noqa: F403 (Oscar's documented way to get its defaults)

from django_tryon.contrib.oscar.dashboard import navigation as tryon_navigation

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-oscar-shop-local-demo-only")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]
SITE_ID = 1

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.flatpages",
    "rest_framework",
    # Before Oscar: the try-on app's product page template extends Oscar's own.
    "django_tryon",
    "django_tryon.contrib.oscar",
    "oscar.config.Shop",
    "oscar.apps.analytics.apps.AnalyticsConfig",
    "oscar.apps.checkout.apps.CheckoutConfig",
    "oscar.apps.address.apps.AddressConfig",
    "oscar.apps.shipping.apps.ShippingConfig",
    "oscar.apps.catalogue.apps.CatalogueConfig",
    "oscar.apps.catalogue.reviews.apps.CatalogueReviewsConfig",
    "oscar.apps.communication.apps.CommunicationConfig",
    "oscar.apps.partner.apps.PartnerConfig",
    "oscar.apps.basket.apps.BasketConfig",
    "oscar.apps.payment.apps.PaymentConfig",
    "oscar.apps.offer.apps.OfferConfig",
    "oscar.apps.order.apps.OrderConfig",
    "oscar.apps.customer.apps.CustomerConfig",
    "oscar.apps.search.apps.SearchConfig",
    "oscar.apps.voucher.apps.VoucherConfig",
    "oscar.apps.wishlists.apps.WishlistsConfig",
    "oscar.apps.dashboard.apps.DashboardConfig",
    "oscar.apps.dashboard.reports.apps.ReportsDashboardConfig",
    "oscar.apps.dashboard.users.apps.UsersDashboardConfig",
    "oscar.apps.dashboard.orders.apps.OrdersDashboardConfig",
    "oscar.apps.dashboard.catalogue.apps.CatalogueDashboardConfig",
    "oscar.apps.dashboard.offers.apps.OffersDashboardConfig",
    "oscar.apps.dashboard.partners.apps.PartnersDashboardConfig",
    "oscar.apps.dashboard.pages.apps.PagesDashboardConfig",
    "oscar.apps.dashboard.ranges.apps.RangesDashboardConfig",
    "oscar.apps.dashboard.reviews.apps.ReviewsDashboardConfig",
    "oscar.apps.dashboard.vouchers.apps.VouchersDashboardConfig",
    "oscar.apps.dashboard.communications.apps.CommunicationsDashboardConfig",
    "oscar.apps.dashboard.shipping.apps.ShippingDashboardConfig",
    # What Oscar builds on.
    "widget_tweaks",
    "haystack",
    "treebeard",
    "sorl.thumbnail",
    "django_tables2",
    "oscar_shop.apps.OscarShopConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "oscar.apps.basket.middleware.BasketMiddleware",
    "django.contrib.flatpages.middleware.FlatpageFallbackMiddleware",
]

AUTHENTICATION_BACKENDS = (
    "oscar.apps.customer.auth_backends.EmailBackend",
    "django.contrib.auth.backends.ModelBackend",
)

ROOT_URLCONF = "oscar_shop.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.template.context_processors.i18n",
                "django.contrib.messages.context_processors.messages",
                "oscar.apps.search.context_processors.search_form",
                "oscar.apps.checkout.context_processors.checkout",
                "oscar.apps.communication.notifications.context_processors.notifications",
                "oscar.core.context_processors.metadata",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TRYON_DEMO_DB", str(BASE_DIR / "db.sqlite3")),
        # The worker and the web server write at once: wait for the lock, do not fail.
        "OPTIONS": {"timeout": 20},
    }
}

# Oscar's catalogue pages are search results: a Whoosh index next to the database, kept
# up to date as products are saved (as in Oscar's own sandbox).
HAYSTACK_CONNECTIONS = {
    "default": {
        "ENGINE": "haystack.backends.whoosh_backend.WhooshEngine",
        "PATH": str(Path(DATABASES["default"]["NAME"]).parent / "whoosh_index"),
    },
}
HAYSTACK_SIGNAL_PROCESSOR = "haystack.signals.RealtimeSignalProcessor"

DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
MEDIA_URL = "media/"
MEDIA_ROOT = os.environ.get("TRYON_DEMO_MEDIA", str(BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

OSCAR_SHOP_NAME = "Try-on Oscar demo"
OSCAR_DEFAULT_CURRENCY = "EUR"
# Oscar's menu, and a "Try-on" menu leading to the try-on pages of the Django admin.
OSCAR_DASHBOARD_NAVIGATION = [*OSCAR_DASHBOARD_NAVIGATION, *tryon_navigation()]  # noqa: F405

SANDBOX_PORT = int(os.environ.get("TRYON_SANDBOX_PORT", "8765"))

# The provider the shop talks to (AILabAPI's protocol, or FASHN's), and so the sandbox
# speaking the same one (DEMO_PROVIDER=fashn make demo-oscar).
DEMO_PROVIDER = os.environ.get("DEMO_PROVIDER", "ailab")
DEMO_BACKENDS = {
    "ailab": "django_tryon.backends.ailab.AILabBackend",
    "fashn": "django_tryon.backends.fashn.FashnBackend",
}

TRYON = {
    "BACKEND": DEMO_BACKENDS[DEMO_PROVIDER],
    # The sandbox accepts any key; a real shop reads its provider's key from the environment.
    "API_KEY": os.environ.get("TRYON_API_KEY", "sandbox-demo-key"),
    "BASE_URL": os.environ.get("TRYON_BASE_URL", f"http://127.0.0.1:{SANDBOX_PORT}"),
    "POLL_INTERVAL": 1.0,
    # Where FASHN calls the shop back (make demo-oscar sets it on FASHN): the shop's origin.
    "WEBHOOK_BASE_URL": os.environ.get("TRYON_WEBHOOK_BASE_URL", ""),
}

# Which products are garments: by category (and its subcategories), else by product class.
TRYON_OSCAR = {
    "CATEGORIES": {
        "tops": "upper_body",
        "trousers-and-skirts": "lower_body",
        "dresses": "full_body",
    },
}
