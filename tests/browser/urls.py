"""A one-page shop for the browser tests: products with the button, and their media."""

from django.conf import settings
from django.urls import include, path
from django.views.static import serve

from . import views

urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("products/<int:pk>/", views.product, name="product"),
    path("privacy/", views.privacy, name="privacy"),
    path("tryon/", include("django_tryon.urls")),
    path("media/<path:path>", serve, {"document_root": settings.MEDIA_ROOT}),
]
