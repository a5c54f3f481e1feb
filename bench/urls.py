"""The benchmarks' URLconf: the app's shopper API at /tryon/, as in a shop."""

from django.urls import include, path

urlpatterns = [path("tryon/", include("django_tryon.urls"))]
