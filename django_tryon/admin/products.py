"""Linking a garment to the shop's product: a searchable picker in the garment's form.

A garment points at any model instance through a generic relation
(``content_type`` + ``object_id``). Staff should not have to know either:
the garment form has one "Product" field that searches the shop's products as
they type, with the admin's own autocomplete (select2, as for
``autocomplete_fields``).

Which models are products: every model registered in the same admin site with
``search_fields`` (the condition Django sets for ``autocomplete_fields``),
except Django's own apps and django-tryon's. A product is offered and accepted
only if the member of staff may view it in the admin.
"""

from django import forms
from django.contrib.admin.widgets import get_select2_language
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

#: Results per page of the picker (select2 asks for the next page as staff scroll).
PAGE_SIZE = 20


def linkable_admins(admin_site):
    """``{model: model_admin}`` of the models a garment may be linked to, in label order."""
    found = {
        model: model_admin
        for model, model_admin in admin_site._registry.items()
        if model_admin.search_fields
        and not model.__module__.startswith(("django.", "django_tryon."))
    }
    return dict(sorted(found.items(), key=lambda item: item[0]._meta.label_lower))


def product_key(obj):
    """``"app_label.model_name:pk"``: the picker's value for a product."""
    return f"{obj._meta.label_lower}:{obj.pk}"


def product_label(obj, several_models):
    if several_models:
        return f"{obj} ({obj._meta.verbose_name})"
    return str(obj)


def viewable_admins(admin_site, request):
    return {
        model: model_admin
        for model, model_admin in linkable_admins(admin_site).items()
        if model_admin.has_view_permission(request)
    }


def product_from_key(key, admins):
    """The product ``key`` names among ``admins``' models; ``ValidationError`` otherwise."""
    label, _sep, pk = str(key).partition(":")
    by_label = {model._meta.label_lower: model for model in admins}
    model = by_label.get(label)
    if model is None or not pk:
        raise ValidationError(_("Choose a product from the list."), code="invalid_choice")
    try:
        return model._default_manager.get(pk=pk)
    except (model.DoesNotExist, ValueError, ValidationError):
        raise ValidationError(
            _("That product no longer exists: choose another."), code="invalid_choice"
        ) from None


class ProductSelect(forms.Select):
    """A select that searches products over :func:`search_view`, with the admin's select2."""

    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.search_url = ""
        self.selected_label = ""

    def build_attrs(self, base_attrs, extra_attrs=None):
        attrs = super().build_attrs(base_attrs, extra_attrs=extra_attrs)
        attrs.update(
            {
                "class": (attrs.get("class", "") + " admin-autocomplete").strip(),
                "data-ajax--cache": "true",
                "data-ajax--delay": 250,
                "data-ajax--type": "GET",
                "data-ajax--url": self.search_url,
                "data-theme": "admin-autocomplete",
                "data-allow-clear": "true",
                "data-placeholder": "",
                "lang": get_select2_language(),
            }
        )
        return attrs

    def optgroups(self, name, value, attrs=None):
        """Only the chosen product is an option: the others come from the search."""
        options = [self.create_option(name, "", "", False, 0)]
        chosen = [v for v in value if v]
        if chosen:
            options.append(self.create_option(name, chosen[0], self.selected_label, True, 1))
        return [(None, options, 0)]

    @property
    def media(self):
        # What Django's AutocompleteSelect loads (admin/js/autocomplete.js starts select2).
        language = get_select2_language()
        return forms.Media(
            js=(
                "admin/js/vendor/jquery/jquery.min.js",
                "admin/js/vendor/select2/select2.full.min.js",
                *((f"admin/js/vendor/select2/i18n/{language}.js",) if language else ()),
                "admin/js/jquery.init.js",
                "admin/js/autocomplete.js",
            ),
            css={
                "screen": (
                    "admin/css/vendor/select2/select2.min.css",
                    "admin/css/autocomplete.css",
                )
            },
        )


class ProductField(forms.Field):
    """A product of the admin site, chosen with :class:`ProductSelect`; cleans to the object."""

    widget = ProductSelect

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", gettext_lazy("Product"))
        super().__init__(**kwargs)
        self.admins: dict = {}
        #: The product the garment is linked to now: kept as it is, even when the
        #: member of staff could not have chosen it (another model, no permission).
        self.current = None

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if self.current is not None and value == product_key(self.current):
            return self.current
        return product_from_key(value, self.admins)

    def prepare_value(self, value):
        return product_key(value) if isinstance(value, models.Model) else value


def search_view(model_admin, request):
    """select2's JSON: the products matching ``term`` the member of staff may view.

    Each linkable model is searched with its own admin's ``get_search_results``
    (its ``search_fields``), so staff find products as they do in the product list.
    """
    if not (model_admin.has_add_permission(request) or model_admin.has_change_permission(request)):
        raise PermissionDenied
    term = request.GET.get("term", "")
    try:
        page = max(1, int(request.GET.get("page", "1")))
    except ValueError:
        page = 1
    admins = viewable_admins(model_admin.admin_site, request)
    skip, wanted = (page - 1) * PAGE_SIZE, PAGE_SIZE + 1  # one more tells there is a next page
    found: list[models.Model] = []
    for model, product_admin in admins.items():
        queryset = product_admin.get_queryset(request)
        queryset, duplicates = product_admin.get_search_results(request, queryset, term)
        if duplicates:
            queryset = queryset.distinct()
        ordering = product_admin.get_ordering(request) or model._meta.ordering or ("pk",)
        queryset = queryset.order_by(*ordering)
        count = queryset.count()
        if skip >= count:
            skip -= count
            continue
        found += list(queryset[skip : skip + wanted - len(found)])
        skip = 0
        if len(found) >= wanted:
            break
    several = len(admins) > 1
    return JsonResponse(
        {
            "results": [
                {"id": product_key(obj), "text": product_label(obj, several)}
                for obj in found[:PAGE_SIZE]
            ],
            "pagination": {"more": len(found) > PAGE_SIZE},
        }
    )
