"""``/github/catalog/<host>/<id>``: what a registered repository folder holds, as services.

The route names a folder registered as a dataset (its access check runs first, like its
FeatureServer's). The answer is shaped like an ArcGIS services directory folder, with more:

    {"currentVersion": ..., "repository": "owner/repo", "ref": null, "path": "data",
     "services": [the folder's FeatureServer, then each file registered as a service],
     "folders": [{"name", "path", "catalog"}: subfolders registered as datasets get a URL],
     "files": [{"name", "path", "id", "size", "service": URL or null}]}

``files`` lists every data file of the folder (the layers of the folder's service), with the
route id under which it can be registered as a service of its own.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse

from koop_app import lookup
from koop_app.auth import access as auth_access
from koop_app.auth.credentials import user_of
from koop_app.auth.guards import error_response
from koop_app.errors import KoopError, NotFoundError, ProviderError
from koop_app.models import Dataset
from koop_app.outputs.geoservices.serializers import CURRENT_VERSION
from koop_app.provider import Controller

from .names import parse_host, parse_path, route_id


class GitHubController(Controller):
    def catalog(self, request: HttpRequest, host: str, id: str) -> HttpResponse:
        try:
            body = self.listing(request, host, id)
        except KoopError as exc:
            return error_response(request, exc)
        indent = orjson.OPT_INDENT_2 if request.GET.get("f") == "pjson" else 0
        return HttpResponse(orjson.dumps(body, option=indent), content_type="application/json")

    def listing(self, request: HttpRequest, host: str, folder_id: str) -> dict[str, Any]:
        provider = self.provider
        try:  # the guard has checked the caller may read it
            dataset = lookup.find_dataset(provider.name, host, folder_id)
        except Dataset.DoesNotExist:
            raise NotFoundError("No such folder is registered.", details=[
                f"Register {host}/{folder_id} as a {provider.name} dataset to list it."]
            ) from None
        repository, path = parse_host(host), parse_path(folder_id)
        options = lookup.clean_options(dataset)
        answer = provider.client(options).contents(repository, path)  # type: ignore[attr-defined]
        if answer.listing is None:
            raise ProviderError(400, f"{path!r} is a file, not a folder: its service is "
                                     "the dataset itself.")
        files = sorted((e for e in answer.listing if e.is_data_file), key=lambda e: e.path)
        folders = sorted((e for e in answer.listing if e.type == "dir"), key=lambda e: e.path)
        ids = [route_id(e.path) for e in (*files, *folders)]
        user = user_of(request)
        rows = auth_access.readable(Dataset.objects.select_related("provider").filter(
            provider__name=provider.name, enabled=True, host=host, dataset_id__in=ids), user)
        registered = {row.dataset_id: row for row in rows}

        def service_url(row: Dataset | None) -> str | None:
            where = row.feature_server_path() if row is not None else None
            return request.build_absolute_uri(where) if where else None

        def catalog_url(row: Dataset | None) -> str | None:
            if row is None:
                return None
            return request.build_absolute_uri(
                f"/{provider.name}/catalog/{row.host}/{row.dataset_id}")

        services = [{"name": dataset.route_label, "type": "FeatureServer",
                     "url": service_url(dataset)}]
        services += [{"name": registered[route_id(e.path)].route_label, "type": "FeatureServer",
                      "url": service_url(registered[route_id(e.path)])}
                     for e in files if route_id(e.path) in registered]
        return {
            "currentVersion": CURRENT_VERSION,
            "repository": repository.full_name, "ref": repository.ref, "path": path,
            "services": services,
            "folders": [{"name": e.name, "path": e.path, "id": route_id(e.path),
                         "catalog": catalog_url(registered.get(route_id(e.path)))}
                        for e in folders],
            "files": [{"name": e.name, "path": e.path, "id": route_id(e.path), "size": e.size,
                       "service": service_url(registered.get(route_id(e.path)))}
                      for e in files],
        }
