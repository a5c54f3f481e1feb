from django.urls import path

from . import views

app_name = "shop"

urlpatterns = [
    path("", views.ProductListView.as_view(), name="products"),
    path("products/<slug:slug>/", views.ProductDetailView.as_view(), name="product"),
    path("sample-photos/<slug:slug>.jpg", views.sample_photo, name="sample-photo"),
    path("privacy/", views.PrivacyView.as_view(), name="privacy"),
]
