"""Try-on providers. :func:`get_backend` builds the one the settings name."""

from ..conf import tryon_settings


def get_backend(**overrides):
    """An instance of ``TRYON['BACKEND']``, configured from ``TRYON``.

    ``overrides`` (lowercase setting names: ``api_key``, ``base_url``,
    ``options``, ``connect_timeout``, ``read_timeout``) replace the settings of
    the same name; see :func:`~django_tryon.backends.base.backend_setting`.
    """
    backend_class = tryon_settings.import_path("BACKEND")
    return backend_class(**overrides)
