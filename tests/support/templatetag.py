"""Rendering ``{% tryon_button %}`` in a test, and reading what it wrote."""

import html
import json
import re

from django.core.files.base import ContentFile
from django.template import engines
from django.test import RequestFactory

from django_tryon.models import Garment
from tests.support.images import make_image_bytes


def render(source, request=None, **context):
    template = engines["django"].from_string("{% load tryon %}" + source)
    if request is None:
        request = RequestFactory().get("/product/")
    return template.render(context, request)


def make_garment(product=None, name="Striped T-shirt", **fields):
    fields.setdefault("clothes_type", "upper_body")
    garment = Garment(name=name, **fields)
    garment.image = ContentFile(make_image_bytes((300, 300)), name="garment.jpg")
    if product is not None:
        garment.product = product
    garment.save()
    return garment


def config_of(output, index=0):
    configs = re.findall(r'data-tryon-config="([^"]*)"', output)
    return json.loads(html.unescape(configs[index]))
