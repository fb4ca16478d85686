"""An index's ``_mapping`` as a layer: fields with Esri types, the geometry field, the id.

Only top-level leaf fields are served (objects and ``nested`` fields are not: the query
language of the layer cannot name them). A ``text`` field with a ``keyword`` sub-field is
filtered and sorted on the sub-field; a text field without one cannot be filtered on.
Documents are turned into GeoJSON features here too (geo_point in any of its five forms,
geo_shape as GeoJSON or WKT).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import shapely

from koop_app.data.schema import (
    DATE,
    DOUBLE,
    INTEGER,
    OID,
    SMALL_INTEGER,
    STRING,
    Field,
    LayerSchema,
)
from koop_app.data.values import parse_date_ms
from koop_app.errors import OptionsError, SourceFormatError

logger = logging.getLogger(__name__)

# Elasticsearch / OpenSearch field types -> Esri field types (``long`` may pass 32 bits: a
# double, as ArcGIS has no 64-bit integer in the versions clients speak).
ESRI_TYPES = {
    "keyword": STRING, "constant_keyword": STRING, "wildcard": STRING, "text": STRING,
    "match_only_text": STRING, "ip": STRING, "version": STRING,
    "long": DOUBLE, "unsigned_long": DOUBLE, "integer": INTEGER, "short": SMALL_INTEGER,
    "byte": SMALL_INTEGER, "double": DOUBLE, "float": DOUBLE, "half_float": DOUBLE,
    "scaled_float": DOUBLE, "date": DATE, "date_nanos": DATE, "boolean": SMALL_INTEGER,
}
INTEGER_TYPES = {"long", "integer", "short", "byte", "unsigned_long"}
GEO_TYPES = ("geo_point", "geo_shape", "shape")
STRING_TYPES = {"keyword", "constant_keyword", "wildcard", "text", "match_only_text", "ip",
                "version"}


@dataclass(frozen=True)
class SourceField:
    """One served field: its name, Elasticsearch type and where to filter/sort on it."""

    name: str
    es_type: str
    esri_type: str
    keyword: str | None  # the field (or sub-field) holding the exact value; None for pure text
    normalized: bool = False  # a keyword normalizer (e.g. lowercase): ranges ignore case

    @property
    def is_text(self) -> bool:
        return self.es_type in STRING_TYPES


@dataclass(frozen=True)
class IndexLayer:
    """What the provider knows of an index before asking it a question."""

    fields: dict[str, SourceField]  # by lower-cased name
    geometry_field: str | None
    geometry_kind: str | None  # geo_point | geo_shape | shape
    id_field: str | None  # a numeric field served as the object id
    time_field: str | None
    order: tuple[str, ...] = field(default=())  # field names in mapping order

    def field(self, name: str) -> SourceField | None:
        return self.fields.get(name.lower())

    def layer_schema(self) -> LayerSchema:
        """A LayerSchema for checking a where clause (``where.checked_tree``)."""
        fields = [Field(f.name, OID if f.name == self.id_field else f.esri_type, f.name)
                  for f in (self.fields[n.lower()] for n in self.order)]
        oid = self.id_field or "OBJECTID"
        if self.id_field is None:
            fields.insert(0, Field(oid, OID, oid))
        return LayerSchema(tuple(fields), oid, None, None)

    def declared_fields(self) -> list[dict[str, Any]]:
        """metadata.fields for the answer: the types a page of documents cannot show."""
        out = []
        for name in self.order:
            item = self.fields[name.lower()]
            kind = "Integer" if name == self.id_field else (
                "boolean" if item.es_type == "boolean" else item.esri_type)
            out.append({"name": name, "type": kind, "alias": name})
        return out


def properties_of(mapping_answer: Mapping[str, Any]) -> dict[str, Any]:
    """The merged top-level properties of every index a ``_mapping`` answer holds."""
    merged: dict[str, Any] = {}
    for index_name in sorted(mapping_answer):
        body = mapping_answer[index_name]
        mappings = body.get("mappings") if isinstance(body, Mapping) else None
        if not isinstance(mappings, Mapping):
            continue
        if "properties" not in mappings and len(mappings) == 1:  # a 6.x typed mapping
            mappings = next(iter(mappings.values()))
        for name, spec in (mappings.get("properties") or {}).items():
            merged.setdefault(name, spec)
    return merged


def index_layer(mapping_answer: Mapping[str, Any], options: Mapping[str, Any]) -> IndexLayer:
    """The layer of an index from its ``_mapping`` answer and the dataset's options."""
    properties = properties_of(mapping_answer)
    fields: dict[str, SourceField] = {}
    order: list[str] = []
    geo: list[tuple[str, str]] = []
    for name, spec in properties.items():
        if not isinstance(spec, Mapping):
            continue
        kind = str(spec.get("type") or ("object" if "properties" in spec else ""))
        if kind in GEO_TYPES:
            geo.append((name, kind))
            continue
        esri = ESRI_TYPES.get(kind)
        if esri is None or not _plain_name(name):
            continue  # objects, nested, binary, ranges, vectors: not served
        if name.lower() in fields:
            logger.warning("elasticsearch: field %r differs from %r only by case; not served",
                           name, fields[name.lower()].name)
            continue
        keyword: str | None = name
        normalized = bool(spec.get("normalizer"))
        if kind in ("text", "match_only_text"):
            keyword = None
            for sub, sub_spec in (spec.get("fields") or {}).items():
                if isinstance(sub_spec, Mapping) and sub_spec.get("type") == "keyword":
                    keyword, normalized = f"{name}.{sub}", bool(sub_spec.get("normalizer"))
                    break
        fields[name.lower()] = SourceField(name, kind, esri, keyword, normalized)
        order.append(name)
    return IndexLayer(fields, *_geometry(geo, options), _id_field(fields, options),
                      _time_field(fields, options), tuple(order))


def _plain_name(name: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name))


def _geometry(geo: list[tuple[str, str]], options: Mapping[str, Any]
              ) -> tuple[str | None, str | None]:
    wanted = options.get("geometry_field") or ""
    if wanted:
        for name, kind in geo:
            if name == wanted:
                return name, kind
        raise OptionsError({"geometry_field": f"{wanted!r} is not a geo_point or geo_shape "
                                              "field of the index"}, "elasticsearch")
    return geo[0] if geo else (None, None)


def _id_field(fields: dict[str, SourceField], options: Mapping[str, Any]) -> str | None:
    wanted = options.get("id_field") or ""
    if not wanted:
        return None
    found = fields.get(wanted.lower())
    if found is None or found.es_type not in INTEGER_TYPES:
        raise OptionsError({"id_field": f"{wanted!r} is not an integer field of the index"},
                           "elasticsearch")
    return found.name


def _time_field(fields: dict[str, SourceField], options: Mapping[str, Any]) -> str | None:
    wanted = options.get("time_field") or ""
    if not wanted:
        return None
    found = fields.get(wanted.lower())
    if found is None or found.esri_type != DATE:
        raise OptionsError({"time_field": f"{wanted!r} is not a date field of the index"},
                           "elasticsearch")
    return found.name


# --- documents -> features --------------------------------------------------------------------

_GEOHASH = "0123456789bcdefghjkmnpqrstuvwxyz"


def _geohash(text: str) -> tuple[float, float] | None:
    """The centre (lon, lat) of a geohash cell; None when ``text`` is not one."""
    lat, lon = [-90.0, 90.0], [-180.0, 180.0]
    even = True
    for char in text.lower():
        value = _GEOHASH.find(char)
        if value < 0:
            return None
        for bit in (16, 8, 4, 2, 1):
            half = lon if even else lat
            middle = (half[0] + half[1]) / 2
            half[0 if value & bit else 1] = middle
            even = not even
    return (lon[0] + lon[1]) / 2, (lat[0] + lat[1]) / 2


def point_of(value: Any) -> dict[str, Any] | None:
    """A geo_point value (object, [lon, lat], "lat,lon", geohash, WKT) as a GeoJSON point."""
    xy: tuple[float, float] | None = None
    if isinstance(value, Mapping):
        if value.get("type") and value.get("coordinates") is not None:
            return dict(value)  # GeoJSON (7.x+)
        if "lat" in value and "lon" in value:
            xy = (value["lon"], value["lat"])
    elif isinstance(value, (list, tuple)) and len(value) >= 2 and not isinstance(
            value[0], (list, dict, str)):
        xy = (value[0], value[1])
    elif isinstance(value, (list, tuple)) and value:
        return point_of(value[0])  # several points: the first (Esri points hold one)
    elif isinstance(value, str):
        text = value.strip()
        if text.upper().startswith("POINT"):
            return shape_of(text)
        parts = text.split(",")
        if len(parts) == 2:
            xy = (parts[1], parts[0])
        else:
            xy = _geohash(text)
    if xy is None:
        return None
    try:
        x, y = float(xy[0]), float(xy[1])
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(x) and math.isfinite(y)):
        return None
    return {"type": "Point", "coordinates": [x, y]}


def shape_of(value: Any) -> dict[str, Any] | None:
    """A geo_shape value (GeoJSON or WKT) as GeoJSON; an ``envelope`` as its polygon."""
    if isinstance(value, Mapping):
        kind = str(value.get("type") or "").lower()
        if kind == "envelope":
            try:
                (xmin, ymax), (xmax, ymin) = value["coordinates"]
            except (KeyError, TypeError, ValueError):
                return None
            return shapely.geometry.mapping(shapely.box(xmin, ymin, xmax, ymax))
        return dict(value)
    if isinstance(value, str):
        try:
            return shapely.geometry.mapping(shapely.from_wkt(value))
        except shapely.errors.GEOSException:
            return None
    return None


def feature_of(hit: Mapping[str, Any], layer: IndexLayer, with_geometry: bool
               ) -> dict[str, Any]:
    """A search hit as a GeoJSON feature: its ``_id`` is the feature's id."""
    source = hit.get("_source")
    if not isinstance(source, Mapping):
        raise SourceFormatError("An Elasticsearch hit has no _source.")
    properties: dict[str, Any] = {}
    for key, value in source.items():
        found = layer.fields.get(key.lower())
        if found is None or found.name != key:
            continue
        properties[key] = _value(value, found)
    geometry = None
    if with_geometry and layer.geometry_field is not None:
        raw = source.get(layer.geometry_field)
        if raw is not None:
            geometry = point_of(raw) if layer.geometry_kind == "geo_point" else shape_of(raw)
    return {"type": "Feature", "id": hit.get("_id"), "properties": properties,
            "geometry": geometry}


def _value(value: Any, found: SourceField) -> Any:
    if isinstance(value, list):  # a multi-valued field: text joins, anything else: the first
        present = [v for v in value if v is not None]
        if not present:
            return None
        if found.esri_type == STRING:
            return ", ".join(str(v) for v in present)
        value = present[0]
    if value is None:
        return None
    if found.esri_type == DATE:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
        ms = parse_date_ms(str(value))
        if ms is None and str(value).lstrip("-").isdigit():
            return int(str(value))
        return ms
    if found.es_type == "boolean":
        if isinstance(value, str):
            return 1 if value == "true" else 0 if value == "false" else None
        return int(bool(value))
    if found.esri_type in (INTEGER, SMALL_INTEGER, DOUBLE) and isinstance(value, str):
        try:
            return float(value) if found.esri_type == DOUBLE else int(value)
        except ValueError:
            return None
    return value
