from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .models import Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "price", "has_garment"]
    search_fields = ["name", "description"]
    prepopulated_fields = {"slug": ["name"]}

    @admin.display(description=_("try-on garment"), boolean=True)
    def has_garment(self, product):
        return product.garment is not None
