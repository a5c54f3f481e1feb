from django.urls import include, path

from . import webhooks

app_name = "django_tryon"

urlpatterns = [
    path("api/", include("django_tryon.api.urls")),
    *webhooks.urlpatterns,
]
