"""The shop's own admin: products staff search when linking a garment to one."""

from django.contrib import admin

from .models import Product, UUIDProduct


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    search_fields = ["name"]
    ordering = ["name"]


@admin.register(UUIDProduct)
class UUIDProductAdmin(admin.ModelAdmin):
    search_fields = ["name"]
    ordering = ["name"]
