import functools

from django.http import Http404, HttpResponse
from django.views.decorators.cache import cache_control
from django.views.generic import DetailView, ListView, TemplateView

from django_tryon.sandbox import samples

from .models import Product


class ProductListView(ListView):
    model = Product
    template_name = "shop/product_list.html"


class ProductDetailView(DetailView):
    model = Product
    template_name = "shop/product_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["sample_models"] = samples.SAMPLE_MODELS
        return context


class PrivacyView(TemplateView):
    template_name = "shop/privacy.html"


@functools.lru_cache(maxsize=8)
def _sample_photo_jpeg(slug):
    # Seed 1: not the pictures the catalogue's model photos were made from.
    return samples.encode(samples.model_photo(slug, seed=1))


@cache_control(max_age=3600)
def sample_photo(request, slug):
    """A drawn full-body photo to try garments on, for visitors who have none at hand."""
    if slug not in {model.slug for model in samples.SAMPLE_MODELS}:
        raise Http404("No such sample photo.")
    response = HttpResponse(_sample_photo_jpeg(slug), content_type="image/jpeg")
    response["Content-Disposition"] = f'inline; filename="sample-{slug}.jpg"'
    return response
