"""Views of the vector tile output: ArcGIS's VectorTileServer and XYZ tiles with TileJSON.

Every view passed the dataset's access check (``koop_app.urls``). Errors are GeoServices error
JSON with the error's HTTP status; under ``/rest/`` the GeoServices middleware answers them
with HTTP 200, as ArcGIS Server does, except a missing tile: a real 404.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import NoReverseMatch, reverse

from koop_app.auth.guards import error_response
from koop_app.data import LayerSet
from koop_app.errors import KoopError, NotFoundError
from koop_app.models import Dataset
from koop_app.outputs import serving
from koop_app.outputs.geoservices.renderers import jsonp_callback
from koop_app.outputs.vectortiles import documents
from koop_app.outputs.vectortiles.tiles import (
    Tile,
    open_tile_layers,
    service_name,
    tile_bytes,
)

MVT_MEDIA_TYPE = "application/x-protobuf"
# Tiles are for maps on any site. The site's CORS middleware covers paths under /rest/ only:
# the XYZ routes say it themselves, on errors and refusals too (a map shows a refused tile as
# an error only if it can read the answer). Simple GETs only: send a token as ?token=, since
# an Authorization header needs a preflight that a secured dataset's access check refuses.
CORS_HEADERS = {"Access-Control-Allow-Origin": "*",
                "Access-Control-Expose-Headers": "ETag, Last-Modified"}


def with_cors(response: HttpResponseBase) -> HttpResponseBase:
    for header, value in CORS_HEADERS.items():
        response.setdefault(header, value)
    return response


def cors_error_response(request: HttpRequest, error: KoopError) -> HttpResponseBase:
    """A refusal or error of an XYZ route: GeoServices error JSON, its HTTP status, CORS."""
    return with_cors(error_response(request, error))


def tile_error_response(request: HttpRequest, error: KoopError) -> HttpResponseBase:
    """An error of ``tile/{z}/{y}/{x}.pbf``: a tile that does not exist is an HTTP 404, as
    ArcGIS Server answers it (map clients draw nothing there); other errors as GeoServices."""
    response = error_response(request, error)
    if error.status == 404:
        response.keeps_http_status = True  # type: ignore[attr-defined]
    return response


answering = serving.answering_errors(error_response)
answering_tile = serving.answering_errors(tile_error_response)
answering_cors = serving.answering_errors(cors_error_response)


def _json(request: HttpRequest, body: Any, params: dict[str, str]) -> HttpResponse:
    """JSON (indented for ``f=pjson``), or JSONP for a ``callback``."""
    option = orjson.OPT_INDENT_2 if params.get("f", "").lower() == "pjson" else 0
    payload = orjson.dumps(body, option=option)
    callback = jsonp_callback(params)
    if callback:
        return HttpResponse(callback.encode() + b"(" + payload + b");",
                            content_type="application/javascript; charset=utf-8")
    return HttpResponse(payload, content_type="application/json; charset=utf-8")


def _dataset_and_layers(request: HttpRequest, provider: str, host: str | None,
                        id: str | None) -> tuple[Dataset, LayerSet]:
    dataset = serving.find_dataset(provider, host, id)
    return dataset, serving.open_layers(request, dataset)


def _route(request: HttpRequest, name: str, provider: str, host: str | None, id: str | None
           ) -> str:
    """The absolute URL of this output's route ``name`` for the dataset (in the same folder
    layout as the request), with the request's token, so that secured tiles load too."""
    url_name = request.resolver_match.url_name if request.resolver_match else ""
    suffix = "-in-folder" if url_name and url_name.endswith("-in-folder") else ""
    kwargs = {key: value for key, value in (("host", host), ("id", id)) if value}
    try:
        path = reverse(f"koop:{provider}:{name}{suffix}", kwargs=kwargs)
    except NoReverseMatch:  # the XYZ routes have no folder alias
        path = reverse(f"koop:{provider}:{name}", kwargs=kwargs)
    url = request.build_absolute_uri(path)
    token = serving.request_params(request).get("token")
    return f"{url}?{urlencode({'token': token})}" if token else url


@answering
def service(request: HttpRequest, provider: str, host: str | None = None,
            id: str | None = None) -> HttpResponseBase:
    params = serving.request_params(request)
    dataset, layers = _dataset_and_layers(request, provider, host, id)
    body = documents.service_json(dataset, layers, service_name(dataset))
    return serving.cacheable(request, _json(request, body, params), dataset, layers, params)


@answering
def root_style(request: HttpRequest, provider: str, host: str | None = None,
               id: str | None = None) -> HttpResponseBase:
    """The default style (``resources/styles`` and ``resources/styles/root.json``)."""
    params = serving.request_params(request)
    dataset, layers = _dataset_and_layers(request, provider, host, id)
    source = {"type": "vector",
              "url": _route(request, "vectortiles-service", provider, host, id)}
    body = documents.style_json(dataset, layers, source)
    return serving.cacheable(request, _json(request, body, params), dataset, layers, params)


@answering
def resource_info(request: HttpRequest, provider: str, host: str | None = None,
                  id: str | None = None) -> HttpResponseBase:
    """``resources/info``: the style's resource files (no sprites or fonts: styles draw
    circles, lines and fills only)."""
    serving.find_dataset(provider, host, id)
    return _json(request, {"resourceInfo": []}, serving.request_params(request))


@answering
def tilemap(request: HttpRequest, provider: str, level: str, row: str, col: str, width: str,
            height: str, host: str | None = None, id: str | None = None) -> HttpResponseBase:
    params = serving.request_params(request)
    try:
        area = [int(v) for v in (level, row, col, width, height)]
    except ValueError:
        raise NotFoundError("Tile map not found.") from None
    if not (1 <= area[3] <= 1024 and 1 <= area[4] <= 1024):
        raise NotFoundError("Tile map not found.",
                            details=["width and height go from 1 to 1024."])
    dataset, layers = _dataset_and_layers(request, provider, host, id)
    body = documents.tilemap_json(layers, *area)
    return serving.cacheable(request, _json(request, body, params), dataset, layers, params)


def _tile(request: HttpRequest, provider: str, host: str | None, id: str | None,
          tile: Tile) -> HttpResponseBase:
    dataset = serving.find_dataset(provider, host, id)
    layers = open_tile_layers(request, dataset, tile)
    question = {"tile": f"{tile.z}/{tile.x}/{tile.y}"}
    # A client's current copy is answered before the tile is built.
    probe = serving.cacheable(request, HttpResponse(), dataset, layers, question, shared=True)
    if probe.status_code == 304:
        return probe
    # An empty tile (no feature) is an empty body: a valid MVT with no layer, which
    # MapLibre, OpenLayers and the ArcGIS Maps SDK draw as nothing.
    response = HttpResponse(tile_bytes(dataset, layers, tile), content_type=MVT_MEDIA_TYPE)
    return serving.cacheable(request, response, dataset, layers, question, shared=True)


@answering_tile
def arcgis_tile(request: HttpRequest, provider: str, z: str, y: str, x: str,
                host: str | None = None, id: str | None = None) -> HttpResponseBase:
    """``tile/{z}/{y}/{x}.pbf``: ArcGIS orders the row before the column."""
    return _tile(request, provider, host, id, Tile.checked(z, x, y))


@answering_cors
def xyz_tile(request: HttpRequest, provider: str, z: str, x: str, y: str,
             host: str | None = None, id: str | None = None) -> HttpResponseBase:
    """``{z}/{x}/{y}.pbf``: the XYZ order of MapLibre, OpenLayers and Koop's vector tiles."""
    return with_cors(_tile(request, provider, host, id, Tile.checked(z, x, y)))


@answering_cors
def tilejson(request: HttpRequest, provider: str, host: str | None = None,
             id: str | None = None) -> HttpResponseBase:
    params = serving.request_params(request)
    dataset, layers = _dataset_and_layers(request, provider, host, id)
    url = _route(request, "vectortiles-tilejson", provider, host, id)
    base, _, query = url.partition("?")
    tiles = base.rsplit("/", 1)[0] + "/{z}/{x}/{y}.pbf" + (f"?{query}" if query else "")
    body = documents.tilejson(dataset, layers, service_name(dataset), tiles)
    return with_cors(serving.cacheable(request, _json(request, body, params), dataset, layers,
                                       params))


@answering_cors
def maplibre_style(request: HttpRequest, provider: str, host: str | None = None,
                   id: str | None = None) -> HttpResponseBase:
    """A MapLibre / Mapbox GL style over the XYZ tiles (their TileJSON)."""
    params = serving.request_params(request)
    dataset, layers = _dataset_and_layers(request, provider, host, id)
    source = {"type": "vector",
              "url": _route(request, "vectortiles-tilejson", provider, host, id)}
    body = documents.style_json(dataset, layers, source)
    return with_cors(serving.cacheable(request, _json(request, body, params), dataset, layers,
                                       params))
