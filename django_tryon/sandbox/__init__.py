"""A try-on provider on loopback, for the demo, tests and benchmarks.

``SandboxServer`` speaks AILabAPI's protocol or FASHN's, makes its pictures by
compositing (no model), and injects faults on demand; ``samples`` draws
garments and model photos. See ``docs/sandbox.md``.
"""

try:
    import numpy  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "The try-on sandbox needs NumPy: pip install 'django-tryon[sandbox]'."
    ) from err

from .server import SandboxServer

__all__ = ["SandboxServer"]
