"""Outputs: each declares a route table; ``koop_app.urls`` multiplies it by the registry.

An output is a module with ``routes``, a list of ``OutputRoute``. A path may hold
``$namespace`` (the provider's name) and ``$providerParams`` (``<host>/<id>``, ``<id>`` or
nothing, as the provider's ``hosts``/``disable_id_param`` say); an ``absolute`` route is
mounted once, outside any provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

DEFAULT_OUTPUTS = ["koop_app.outputs.geoservices"]


@dataclass(frozen=True)
class OutputRoute:
    path: str
    view: Any  # a Django view callable
    name: str
    absolute: bool = False


def output_modules() -> list[Any]:
    """Output modules named in settings.KOOP_OUTPUTS (default: GeoServices)."""
    from importlib import import_module

    names = getattr(settings, "KOOP_OUTPUTS", DEFAULT_OUTPUTS)
    return [import_module(name) if "." in name and not name[0].isupper() else import_string(name)
            for name in names]
