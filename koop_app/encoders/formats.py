"""The encoder of each query answer format; outputs pick one by ``f``."""

from __future__ import annotations

from typing import Any

from koop_app.encoders import esri_pbf
from koop_app.encoders.esri_json import esri_query_json
from koop_app.encoders.geojson import geojson_query_json
from koop_app.query import Result

QUERY_ENCODERS = {"json": esri_query_json, "pjson": esri_query_json,
                  "geojson": geojson_query_json, "pbf": esri_pbf.encode,
                  "html": esri_query_json}  # the services directory's page shows the JSON's
# Formats whose large answers are sent while they are written (the others are read whole).
STREAMED_FORMATS = ("json", "geojson")


def encode(format: str, result: Result, precision: int | None = None) -> Any:
    """The answer to a query in ``format``: a dict for the JSON renderers, bytes for PBF."""
    return QUERY_ENCODERS[format](result, precision)
