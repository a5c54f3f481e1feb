"""Virtual try-on for django-oscar shops: ``django_tryon.contrib.oscar``.

Garments made from Oscar products and kept in step with them, the button on
Oscar's product page, and catalogue pictures published to a product's gallery.
See ``docs/oscar.md``.
"""
