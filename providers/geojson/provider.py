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
    version = "1.0.0"
    options_schema = (
        Option("source", str, required=True, check=check_location, kind="location",
               help="http(s) URL, or a path relative to KOOP['DATA_DIR']"),
    )

    def get_data(self, request: ProviderRequest) -> dict[str, Any]:
        return geojson_document(read_source(request.options["source"]))

    def get_source(self, request: ProviderRequest) -> FileSource:
        """The file itself (or a streamed download): a refresh reads it batch by batch."""
        path, temporary = source_file(request.options["source"])
        return FileSource(path, "geojson", temporary=temporary, parse=geojson_document)
