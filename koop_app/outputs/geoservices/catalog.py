"""The services directory: ``/rest/services`` and its folders, as ArcGIS Server lays them out.

ArcGIS Server keeps services in folders one level deep. The root lists the folders and the
services outside any folder; a folder lists its services named "Folder/Service", and clients
build a service's URL as ``<root>/rest/services/<name>/FeatureServer``. Here each provider is a
folder and each dataset a service named by its route: ``<provider>/<id>``,
``<provider>/<host>/<id>`` or ``<provider>/<host>``; a provider with neither host nor id serves
one dataset, named ``<provider>``, at the root. Those URLs are aliases of the Koop URLs
(``/<provider>/rest/services/...``, koop_app.urls), so every name resolves.

Only what the caller may read is listed, and a folder is there only when it holds some of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from koop_app.auth import access as auth_access
from koop_app.errors import NotFoundError
from koop_app.models import Dataset
from koop_app.outputs import folder_route_name, offers_of
from koop_app.outputs.geoservices.serializers import CURRENT_VERSION


def service_path(dataset: Dataset, route: str = "geoservices-service") -> str | None:
    """``/rest/services/<name>/<Type>`` of a dataset's ArcGIS service (None: no such route)."""
    name = f"koop:{dataset.provider.name}:{folder_route_name(route)}"
    try:
        return reverse(name, kwargs=dataset.route_kwargs())
    except NoReverseMatch:
        return None


def _services(request: HttpRequest, user: Any, provider: str | None = None
              ) -> Iterator[tuple[str, dict[str, Any]]]:
    """(folder or "", entry) of the enabled datasets the caller may read, in route order.

    Each ArcGIS service an output offers (FeatureServer, VectorTileServer) is an entry, as
    ArcGIS Server lists them; each entry's ``offers`` names every output's URL for the dataset
    (WFS, WMS, OGC API Features, CSV...), for people and other clients.
    """
    rows = Dataset.objects.select_related("provider").filter(enabled=True,
                                                             provider__enabled=True)
    if provider is not None:
        rows = rows.filter(provider__name=provider)
    rows = auth_access.readable(rows, user)
    for dataset in rows:
        found = offers_of(dataset)
        offered = {offer.kind: request.build_absolute_uri(path) for offer, path in found}
        name = dataset.route_label
        folder = name.partition("/")[0] if "/" in name else ""
        for offer, _ in found:
            path = service_path(dataset, offer.route) if offer.service else None
            if path is not None:
                yield folder, {"name": name, "type": offer.kind,
                               "url": request.build_absolute_uri(path), "offers": offered}


def root(request: HttpRequest, user: Any) -> dict[str, Any]:
    """``/rest/services``: the folders, and the services outside any folder."""
    folders: set[str] = set()
    services = []
    for folder, entry in _services(request, user):
        if folder:
            folders.add(folder)
        else:
            services.append(entry)
    return {"currentVersion": CURRENT_VERSION, "folders": sorted(folders), "services": services}


def folder(request: HttpRequest, user: Any, name: str) -> dict[str, Any]:
    """``/rest/services/<name>``: its services, or "Folder not found" (code 404)."""
    services = [entry for folder, entry in _services(request, user, name) if folder == name]
    if not services:
        raise NotFoundError("Folder not found.")
    return {"currentVersion": CURRENT_VERSION, "folders": [], "services": services}
