"""A "Try-on" menu for Oscar's dashboard, leading to the try-on pages of the Django
admin (garments, jobs and their pictures, model photos, the status overview).

In the shop's settings::

    from oscar.defaults import *  # noqa
    from django_tryon.contrib.oscar.dashboard import navigation as tryon_navigation

    OSCAR_DASHBOARD_NAVIGATION = [*OSCAR_DASHBOARD_NAVIGATION, *tryon_navigation()]

This module imports no model, so settings can import it.
"""

from django.utils.translation import gettext_lazy as _

#: (label, admin URL name, permission needed to see the entry)
ENTRIES = (
    (_("Garments"), "admin:django_tryon_garment_changelist", "django_tryon.view_garment"),
    (_("Try-on jobs"), "admin:django_tryon_tryonjob_changelist", "django_tryon.view_tryonjob"),
    (_("Model photos"), "admin:django_tryon_modelphoto_changelist", "django_tryon.view_modelphoto"),
    (_("Status overview"), "admin:django_tryon_tryonjob_overview", "django_tryon.view_tryonjob"),
)


def staff_with(permission):
    """An Oscar menu ``access_fn``: staff with ``permission`` see the entry."""

    def access(user, url_name, url_args=None, url_kwargs=None):
        return bool(user.is_active and user.is_staff and user.has_perm(permission))

    return access


def navigation(label=None, icon="fas fa-tshirt"):
    """The menu, as entries of ``OSCAR_DASHBOARD_NAVIGATION`` (``label``: "Try-on")."""
    return [
        {
            "label": label or _("Try-on"),
            "icon": icon,
            "children": [
                {"label": text, "url_name": url_name, "access_fn": staff_with(permission)}
                for text, url_name, permission in ENTRIES
            ],
        }
    ]
