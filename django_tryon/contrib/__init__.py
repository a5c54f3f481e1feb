"""Integrations of django-tryon with shop frameworks.

Each sub-package is a Django app of its own, installed with the extra of the
same name (``pip install django-tryon[oscar]``). The core never imports them.
"""
