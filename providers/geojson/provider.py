"""Serves a GeoJSON FeatureCollection read from an http(s) URL or the data directory."""

from __future__ import annotations

from typing import Any

from koop_app.data.ingest import geojson_document
from koop_app.options import Option
from koop_app.provider import FileSource, Provider, ProviderRequest
from koop_app.sources import check_location, read_source, source_file


class GeoJSONProvider(Provider):
    """``/geojson/rest/services/<id>/FeatureServer``: one dataset per registered GeoJSON source.

    The source is a FeatureCollection, a single Feature, or a multi-layer document
    ``{"layers": [FeatureCollection, ...], "tables": [...]}`` (ids from each metadata.id).
    """

    name = "geojson"
    title = "GeoJSON file or URL"
    description = ("A GeoJSON FeatureCollection (or a single Feature) from a file in the data "
                   "folder or an http(s) URL; fetched and cached, refreshed after the cache "
                   "lifetime.")
    version = "1.0.0"
    options_schema = (
        Option("source", str, required=True, check=check_location, kind="location",
               label="Source file or URL",
               help="A .geojson/.json file in the data folder (e.g. parks.geojson or "
                    "city/parks.geojson), or an http(s) URL such as "
                    "https://example.com/parks.geojson."),
    )

    def get_data(self, request: ProviderRequest) -> dict[str, Any]:
        return geojson_document(read_source(request.options["source"]))

    def get_source(self, request: ProviderRequest) -> FileSource:
        """The file itself (or a streamed download): a refresh reads it batch by batch."""
        path, temporary = source_file(request.options["source"])
        return FileSource(path, "geojson", temporary=temporary, parse=geojson_document)
