"""Outputs: each declares a route table; ``koop_app.urls`` multiplies it by the registry.

An output is a module (or package) with ``routes``, a list of ``OutputRoute``, found in
KOOP["OUTPUTS"] (dotted module paths) and in the ``koop.outputs`` entry-point group
(KOOP["OUTPUT_ENTRY_POINT_GROUP"]) of installed distributions, as providers are. It may also
declare ``name`` (shown in ``/rest/info``) and ``offers``, a list of ``Offer``: what a dataset
serves through it, listed by the services directory and ``/rest/info``.

A route path may hold ``$namespace`` (the provider's name) and ``$providerParams``
(``<host>/<id>``, ``<id>`` or nothing, as the provider's ``hosts``/``disable_id_param`` say);
an ``absolute`` route is mounted once, outside any provider.

A route under ``$namespace/rest/services/`` (Koop's URL) is also mounted under
``rest/services/$namespace/``: ArcGIS Server's layout, where the provider is a folder of the
services directory (``/rest/services/<provider>/<id>/FeatureServer``). Its URL name is
``folder_route_name(name)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from koop_app.conf import koop_settings


@dataclass(frozen=True)
class OutputRoute:
    path: str
    view: Any  # a Django view callable
    name: str
    absolute: bool = False
    # How this route answers a refused access check (koop_app.auth.guards), in its standard's
    # own error format: ``error_response(request, error) -> HttpResponse``. None: JSON.
    error_response: Callable[..., Any] | None = None


@dataclass(frozen=True)
class Offer:
    """What a dataset serves through an output: ``kind`` at the URL of route ``route``.

    ``kind`` is what clients know it as ("FeatureServer", "VectorTileServer", "WFS", "WMS",
    "OGC API Features", "CSV"...). ``service`` marks an ArcGIS service type, which the services
    directory lists as a service of its own (as ArcGIS Server lists a tile service beside its
    feature service). ``kwargs`` adds route arguments beyond the dataset's (e.g. a layer).
    """

    kind: str
    route: str
    service: bool = False
    kwargs: tuple[tuple[str, str], ...] = ()


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
    """The output modules: KOOP["OUTPUTS"], then the entry-point group's (each once)."""
    modules: list[Any] = []
    for name in koop_settings.OUTPUTS:
        module = import_module(name)
        if module not in modules:
            modules.append(module)
    for point in entry_points(group=koop_settings.OUTPUT_ENTRY_POINT_GROUP):
        module = point.load()
        if module not in modules:
            modules.append(module)
    return modules


def output_name(module: Any) -> str:
    return str(getattr(module, "name", module.__name__.rpartition(".")[2]))


def offers_of(dataset: Any) -> list[tuple[Offer, str]]:
    """Each offer of the outputs for ``dataset``, with its path (those whose route resolves)."""
    from django.urls import NoReverseMatch, reverse

    out = []
    for module in output_modules():
        for offer in getattr(module, "offers", ()):
            name = f"koop:{dataset.provider.name}:{offer.route}"
            try:
                path = reverse(name, kwargs={**dataset.route_kwargs(), **dict(offer.kwargs)})
            except NoReverseMatch:
                continue
            out.append((offer, path))
    return out
