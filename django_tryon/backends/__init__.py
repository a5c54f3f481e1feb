"""Try-on providers. :func:`get_backend` builds the one the settings name."""

from ..conf import tryon_settings


def get_backend(**overrides):
    """An instance of ``TRYON['BACKEND']``, configured from ``TRYON``."""
    backend_class = tryon_settings.import_path("BACKEND")
    options = {
        "api_key": tryon_settings.API_KEY,
        "base_url": tryon_settings.BASE_URL,
        "connect_timeout": tryon_settings.CONNECT_TIMEOUT,
        "read_timeout": tryon_settings.READ_TIMEOUT,
    }
    options.update(overrides)
    return backend_class(**options)
