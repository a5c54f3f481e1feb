from django.urls import include, path

app_name = "django_tryon"

urlpatterns = [
    path("api/", include("django_tryon.api.urls")),
]
