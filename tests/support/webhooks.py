"""Webhook addresses in tests."""


def with_secret(path, secret):
    """``path``, a webhook's, with ``secret`` in place of its own."""
    head, _, _ = path.rstrip("/").rpartition("/")
    return f"{head}/{secret}/"
