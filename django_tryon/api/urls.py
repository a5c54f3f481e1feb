"""The shopper API, under ``tryon/api/``. Names live in the ``django_tryon`` namespace:
``django_tryon:job-list``, ``django_tryon:job-detail`` (kwarg ``pk``),
``django_tryon:garment-list``, ``django_tryon:model-photo-list``."""

from django.urls import path

from . import views

urlpatterns = [
    path("jobs/", views.JobListView.as_view(), name="job-list"),
    # <str:pk>, not <uuid:pk>: a malformed id gets the API's JSON 404, not an HTML page.
    path("jobs/<str:pk>/", views.JobDetailView.as_view(), name="job-detail"),
    path("garments/", views.GarmentListView.as_view(), name="garment-list"),
    path("model-photos/", views.ModelPhotoListView.as_view(), name="model-photo-list"),
]
