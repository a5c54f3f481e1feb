"""A project URLconf that forgot django_tryon.urls (system check E031)."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
