"""Serves a CSV file or URL as points (latitude/longitude columns) or any geometry (WKT column)."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import shapely

from koop_app.data.csvstream import find_column
from koop_app.errors import SourceFormatError
from koop_app.options import Option
from koop_app.provider import FileSource, Provider, ProviderRequest
from koop_app.sources import check_location, read_source, source_file

from .reader import Column, decode, read_columns

LATITUDE_NAMES = ("latitude", "lat", "y", "ycoord", "lat_dd")
LONGITUDE_NAMES = ("longitude", "lon", "lng", "long", "x", "xcoord", "lon_dd")
WKT_NAMES = ("wkt", "geometry", "geom", "the_geom", "shape")


def _check_delimiter(value: str) -> str:
    value = value.replace("\\t", "\t")
    if len(value) != 1:
        raise ValueError("must be a single character (use \\t for tab)")
    return value


def _check_encoding(value: str) -> str:
    import codecs

    try:
        codecs.lookup(value)
    except LookupError:
        raise ValueError(f"unknown encoding {value!r}") from None
    return value


class CSVProvider(Provider):
    """``/csv/rest/services/<id>/FeatureServer``: rows with coordinates or WKT become features."""

    name = "csv"
    title = "CSV table with coordinates or WKT"
    description = ("A CSV file from the data folder or an http(s) URL: points from latitude/"
                   "longitude columns, or any geometry from a WKT column; fetched and cached.")
    version = "1.0.0"
    options_schema = (
        Option("source", str, required=True, check=check_location, kind="location",
               label="Source file or URL",
               help="A .csv file in the data folder (e.g. stations.csv), or an http(s) URL "
                    "such as https://example.com/stations.csv."),
        Option("latitude", str, label="Latitude column",
               help="Latitude column; found by name (lat, latitude, y) if empty"),
        Option("longitude", str, label="Longitude column",
               help="Longitude column; found by name (lon, lng, longitude, x) if empty"),
        Option("wkt", str, label="WKT geometry column",
               help="WKT geometry column, instead of latitude/longitude"),
        Option("delimiter", str, check=_check_delimiter, label="Column separator",
               help="Column separator (e.g. ; or \\t for tab); sniffed if empty"),
        Option("encoding", str, check=_check_encoding, label="Text encoding",
               help="Text encoding (e.g. latin-1); UTF-8 (with or without BOM) or "
                    "Windows-1252 if empty"),
    )

    def get_source(self, request: ProviderRequest) -> FileSource:
        """The file itself (or a streamed download): a refresh reads it batch by batch."""
        options = request.options
        path, temporary = source_file(options["source"])
        wanted = {k: options.get(k) for k in ("latitude", "longitude", "wkt", "delimiter",
                                                "encoding")}
        return FileSource(path, "csv", wanted, temporary=temporary,
                          parse=lambda raw: self.parse(raw, options))

    def get_data(self, request: ProviderRequest) -> dict[str, Any]:
        return self.parse(read_source(request.options["source"]), request.options)

    def parse(self, raw: bytes, options: dict[str, Any]) -> dict[str, Any]:
        """The CSV's bytes as a FeatureCollection."""
        try:
            columns = read_columns(decode(raw, options.get("encoding")), options.get("delimiter"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise SourceFormatError(f"The CSV source cannot be read: {exc}.") from exc
        by_name = {c.name.lower(): c for c in columns}
        geometries = self._geometries(by_name, options)
        count = len(columns[0].values) if columns else 0
        props_columns = [(c.name, c.values) for c in columns]
        features = []
        for index in range(count):
            features.append({
                "type": "Feature",
                "properties": {name: values[index] for name, values in props_columns},
                "geometry": geometries[index],
            })
        fields = [{"name": c.name, "type": c.type} for c in columns]
        return {"type": "FeatureCollection", "features": features,
                "metadata": {"fields": fields}}

    def _geometries(self, by_name: dict[str, Column], options: dict[str, Any]) -> list[Any]:
        wkt = find_column(by_name, options.get("wkt"), WKT_NAMES if not (
            options.get("latitude") or options.get("longitude")) else (), "wkt")
        if wkt is not None:
            parsed = shapely.from_wkt(np.array(wkt.values, dtype=object), on_invalid="ignore")
            texts = shapely.to_geojson(parsed)
            return [None if t is None else orjson.loads(t) for t in texts]
        lat = find_column(by_name, options.get("latitude"), LATITUDE_NAMES, "latitude")
        lon = find_column(by_name, options.get("longitude"), LONGITUDE_NAMES, "longitude")
        if lat is None or lon is None:
            raise SourceFormatError(
                "The CSV has no latitude/longitude or WKT column; name them in the options."
            )
        if lat.type not in ("Double", "Integer") or lon.type not in ("Double", "Integer"):
            raise SourceFormatError(
                f"The CSV columns {lat.name!r}/{lon.name!r} are not all numbers."
            )
        out: list[Any] = []
        for y, x in zip(lat.values, lon.values, strict=True):
            if y is None or x is None or not (-90 <= y <= 90 and -180 <= x <= 180):
                out.append(None)
            else:
                out.append({"type": "Point", "coordinates": [float(x), float(y)]})
        return out

