"""The vector tile output: an ArcGIS VectorTileServer per dataset, and XYZ Mapbox Vector Tiles.

ArcGIS (under the services directory, also in its provider folder)::

    <provider>/rest/services/[<host>/]<id>/VectorTileServer                  service JSON
    .../VectorTileServer/tile/{z}/{y}/{x}.pbf                                 a tile (row, column)
    .../VectorTileServer/resources/styles[/root.json]                         default style
    .../VectorTileServer/tilemap/{level}/{row}/{column}/{width}/{height}      where data is

MapLibre, OpenLayers, Koop's vector-tiles output (XYZ order)::

    <provider>/[<host>/]<id>/VectorTileServer/{z}/{x}/{y}.pbf                 a tile
    <provider>/[<host>/]<id>/VectorTileServer/tiles.json                      TileJSON 3.0.0
    <provider>/[<host>/]<id>/VectorTileServer/style.json                      a style over it
"""

from __future__ import annotations

from koop_app.auth.guards import error_response
from koop_app.outputs import Offer, OutputRoute
from koop_app.outputs.vectortiles import views

SERVICE = r"$namespace/rest/services/$providerParamsVectorTileServer"
XYZ = r"$namespace/$providerParamsVectorTileServer"
_N = r"[^/]+"  # checked by the views, so that a bad number gets the output's own 404

name = "vectortiles"
routes = [
    OutputRoute(SERVICE, views.service, "vectortiles-service", error_response=error_response),
    OutputRoute(rf"{SERVICE}/tile/(?P<z>{_N})/(?P<y>{_N})/(?P<x>[^/.]+)(?:\.pbf)?",
                views.arcgis_tile, "vectortiles-tile", error_response=error_response),
    OutputRoute(rf"{SERVICE}/resources/styles(?:/root\.json)?", views.root_style,
                "vectortiles-style", error_response=error_response),
    OutputRoute(rf"{SERVICE}/resources/info", views.resource_info, "vectortiles-resources",
                error_response=error_response),
    OutputRoute(rf"{SERVICE}/tilemap/(?P<level>{_N})/(?P<row>{_N})/(?P<col>{_N})"
                rf"/(?P<width>{_N})/(?P<height>{_N})", views.tilemap, "vectortiles-tilemap",
                error_response=error_response),
    OutputRoute(rf"{XYZ}/(?P<z>{_N})/(?P<x>{_N})/(?P<y>[^/.]+)\.pbf", views.xyz_tile,
                "vectortiles-xyz", error_response=views.cors_error_response),
    OutputRoute(rf"{XYZ}/tiles\.json", views.tilejson, "vectortiles-tilejson",
                error_response=views.cors_error_response),
    OutputRoute(rf"{XYZ}/style\.json", views.maplibre_style, "vectortiles-maplibre-style",
                error_response=views.cors_error_response),
]
offers = [
    Offer("VectorTileServer", "vectortiles-service", service=True),
    Offer("XYZ vector tiles", "vectortiles-tilejson"),
]

__all__ = ["name", "offers", "routes"]
