"""Outputs: each declares a route table; ``koop_app.urls`` multiplies it by the registry.

An output is a module with ``routes``, a list of ``OutputRoute``. A path may hold
``$namespace`` (the provider's name) and ``$providerParams`` (``<host>/<id>``, ``<id>`` or
nothing, as the provider's ``hosts``/``disable_id_param`` say); an ``absolute`` route is
mounted once, outside any provider.

A route under ``$namespace/rest/services/`` (Koop's URL) is also mounted under
``rest/services/$namespace/``: ArcGIS Server's layout, where the provider is a folder of the
services directory (``/rest/services/<provider>/<id>/FeatureServer``). Its URL name is
``folder_route_name(name)``.
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


KOOP_SERVICES = "$namespace/rest/services/"
FOLDER_SERVICES = "rest/services/$namespace/"


def folder_alias(path: str) -> str | None:
    """The services-directory path of a provider route, when it lies under rest/services."""
    if path.startswith(KOOP_SERVICES):
        return FOLDER_SERVICES + path[len(KOOP_SERVICES):]
    return None


def folder_route_name(name: str) -> str:
    return f"{name}-in-folder"


def output_modules() -> list[Any]:
    """The output modules named in KOOP["OUTPUTS"]."""
    return [import_module(name) for name in koop_settings.OUTPUTS]
