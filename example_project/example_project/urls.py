from django.apps import apps
from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
]

if apps.is_installed("drf_spectacular"):
    from drf_spectacular.views import SpectacularAPIView

    # Before the app's own urls, so that "schema/" is not taken for a job id.
    urlpatterns.append(path("tryon/api/schema/", SpectacularAPIView.as_view(), name="schema"))

urlpatterns += [
    path("tryon/", include("django_tryon.urls")),
    path("", include("shop.urls")),
]

if settings.DEBUG:
    # Uploaded photos, garments and try-on results, served by Django for the demo only.
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
