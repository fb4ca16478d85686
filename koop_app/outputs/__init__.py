"""Outputs: each declares a route table; ``koop_app.urls`` multiplies it by the registry.

An output is a module with ``routes``, a list of ``OutputRoute``. A path may hold
``$namespace`` (the provider's name) and ``$providerParams`` (``<host>/<id>``, ``<id>`` or
nothing, as the provider's ``hosts``/``disable_id_param`` say); an ``absolute`` route is
mounted once, outside any provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any

from koop_app.conf import koop_settings


@dataclass(frozen=True)
class OutputRoute:
    path: str
    view: Any  # a Django view callable
    name: str
    absolute: bool = False


def output_modules() -> list[Any]:
    """The output modules named in KOOP["OUTPUTS"]."""
    return [import_module(name) for name in koop_settings.OUTPUTS]
