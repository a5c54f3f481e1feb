"""Folders of tests that run only when named on the command line (they need their own
settings, or start real processes): the ``pytest_ignore_collect`` hook they share."""

from pathlib import Path


def asked_for(folder, config):
    """Whether this run names ``folder`` (or something inside it) on the command line."""
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path == folder or folder in path.parents:
            return True
    return False


def ignore_unless_asked(folder):
    """A ``pytest_ignore_collect`` hook for a conftest in ``folder``."""

    def pytest_ignore_collect(collection_path, config):
        if collection_path.resolve() == folder / "conftest.py":
            return None
        return None if asked_for(folder, config) else True

    return pytest_ignore_collect
