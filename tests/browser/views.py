from django.shortcuts import get_object_or_404, render

from django_tryon.models import Garment
from tests.testapp.models import Product


def catalogue(request):
    products = [(p, Garment.objects.get_for(p)) for p in Product.objects.order_by("pk")]
    return render(request, "shop/catalogue.html", {"products": products})


def product(request, pk):
    item = get_object_or_404(Product, pk=pk)
    context = {"product": item, "garment": Garment.objects.get_for(item)}
    return render(request, "shop/product.html", context)


def privacy(request):
    return render(request, "shop/privacy.html")
