"""Serves a GeoJSON FeatureCollection read from an http(s) URL or the data directory."""

from __future__ import annotations

from typing import Any

import orjson

from koop_app.errors import SourceFormatError
from koop_app.options import Option
from koop_app.provider import Provider, ProviderRequest
from koop_app.sources import check_location, read_source


class GeoJSONProvider(Provider):
    """``/geojson/rest/services/<id>/FeatureServer``: one dataset per registered GeoJSON source.

    The source is a FeatureCollection, a single Feature, or a multi-layer document
    ``{"layers": [FeatureCollection, ...], "tables": [...]}`` (ids from each metadata.id).
    """

    name = "geojson"
    version = "1.0.0"
    options_schema = (
        Option("source", str, required=True, check=check_location,
               help="http(s) URL, or a path relative to KOOP['DATA_DIR']"),
    )

    def get_data(self, request: ProviderRequest) -> dict[str, Any]:
        raw = read_source(request.options["source"])
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise SourceFormatError("The GeoJSON source is not valid JSON.",
                                    log_message=f"invalid JSON: {exc}") from exc
        if isinstance(data, dict) and data.get("type") == "Feature":
            data = {"type": "FeatureCollection", "features": [data]}
        if isinstance(data, dict) and ("layers" in data or "tables" in data):
            return data  # a multi-layer document: {"layers": [...], "tables": [...]}
        if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
            raise SourceFormatError("The GeoJSON source is not a FeatureCollection.")
        return data
