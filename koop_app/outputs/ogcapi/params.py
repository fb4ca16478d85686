"""The items parameters of OGC API - Features (Parts 1-3) as GeoServices query parameters.

Everything a request asks for becomes the parameters the FeatureServer's ``query`` takes
(``where``, ``geometry``, ``time``, ``outFields``, ``orderByFields``, ``resultOffset``,
``resultRecordCount``, ``outSR``), so the engine checks and runs it with the layer's record
limits, and pass-through providers filter at the source as they do for ``query``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from koop_app.data.schema import DATE, DOUBLE, OID, STRING, Field, LayerSchema
from koop_app.errors import InvalidParameterError
from koop_app.outputs.ogcapi.cql import parse_filter
from koop_app.outputs.ogcapi.crs import WGS84_LONLAT, OutputCrs, parse_crs
from koop_app.query.ogc_filter import FilterError, to_geoservices

# Parameters of the items request; a property of the layer is also one (equality filter).
ITEMS_PARAMETERS = frozenset({
    "f", "token", "limit", "offset", "bbox", "bbox-crs", "datetime", "properties", "crs",
    "filter", "filter-lang", "filter-crs", "sortby", "skipGeometry"})
FEATURE_PARAMETERS = frozenset({"f", "token", "crs", "properties", "skipGeometry"})
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass
class ItemsRequest:
    """One items request, read: the GeoServices parameters and what the answer needs."""

    query: dict[str, str]
    crs: OutputCrs
    limit: int
    offset: int
    properties: tuple[str, ...] | None  # None: every property
    skip_geometry: bool = False
    # The parameters to carry into paging links (the request's, less limit/offset).
    carried: dict[str, str] = field(default_factory=dict)


def unknown_parameters(params: Mapping[str, str], allowed: frozenset[str],
                       schema: LayerSchema | None = None) -> None:
    """Part 1 (/req/core/query-param-unknown): a parameter the API does not define is a 400."""
    for name in params:
        if name in allowed or (schema is not None and schema.field(name) is not None
                               and schema.field(name).name == name):
            continue
        raise InvalidParameterError(name, f"unknown parameter {name[:60]!r}")


def read_items(params: Mapping[str, str], schema: LayerSchema, max_limit: int) -> ItemsRequest:
    unknown_parameters(params, ITEMS_PARAMETERS, schema)
    limit = _integer(params, "limit", max_limit, minimum=1)
    limit = min(limit, max_limit)  # Part 1 lets a server clamp a limit beyond its maximum
    offset = _integer(params, "offset", 0, minimum=0)
    crs = parse_crs(params.get("crs"), "crs")
    clauses: list[str] = []
    query: dict[str, str] = {}
    spatial = _filter(params, schema, clauses, query)
    box = _bbox(params)
    if box is not None:
        _add_bbox(box, params, query, spatial)
    when = params.get("datetime")
    if when:
        _datetime(when, schema, clauses, query)
    for name, value in params.items():
        if name in ITEMS_PARAMETERS:
            continue
        found = schema.field(name)
        if found is not None:
            clauses.append(f"{_name(found)} = {_literal(found, value, name)}")
    properties = _properties(params.get("properties"), schema)
    skip_geometry = _boolean(params, "skipGeometry")
    query.update({
        "where": " AND ".join(f"({c})" for c in clauses) or "1=1",
        "outFields": "*" if properties is None else ",".join(
            [schema.object_id_field, *properties]),
        "resultOffset": str(offset),
        "resultRecordCount": str(limit),
        "outSR": str(crs.wkid),
        "returnGeometry": "false" if skip_geometry else "true",
    })
    order = _sortby(params.get("sortby"), schema)
    if order:
        query["orderByFields"] = order
    carried = {k: v for k, v in params.items() if k not in ("limit", "offset")}
    return ItemsRequest(query, crs, limit, offset, properties, skip_geometry, carried)


def read_feature(params: Mapping[str, str], schema: LayerSchema, feature_id: str
                 ) -> tuple[dict[str, str], OutputCrs, tuple[str, ...] | None, bool] | None:
    """The query of one feature, or None when ``feature_id`` cannot be an object id."""
    unknown_parameters(params, FEATURE_PARAMETERS)
    crs = parse_crs(params.get("crs"), "crs")
    properties = _properties(params.get("properties"), schema)
    skip = _boolean(params, "skipGeometry")
    if not re.fullmatch(r"-?\d{1,18}", feature_id):
        return None
    query = {"objectIds": str(int(feature_id)), "outSR": str(crs.wkid),
             "outFields": "*" if properties is None else ",".join(
                 [schema.object_id_field, *properties]),
             "returnGeometry": "false" if skip else "true"}
    return query, crs, properties, skip


def _integer(params: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    text = (params.get(name) or "").strip()
    if not text:
        return default
    if not re.fullmatch(r"\+?\d{1,12}", text):
        raise InvalidParameterError(name, f"{text[:40]!r} is not an integer >= {minimum}")
    value = int(text)
    if value < minimum:
        raise InvalidParameterError(name, f"must be at least {minimum}")
    return value


def _boolean(params: Mapping[str, str], name: str) -> bool:
    text = (params.get(name) or "false").strip().lower()
    if text not in ("true", "false"):
        raise InvalidParameterError(name, "must be true or false")
    return text == "true"


def _numbers(text: str, name: str) -> list[float]:
    parts = [p.strip() for p in text.split(",")]
    if not all(_NUMBER.match(p) for p in parts):
        raise InvalidParameterError(name, "expected comma-separated numbers")
    values = [float(p) for p in parts]
    if not all(math.isfinite(v) for v in values):
        raise InvalidParameterError(name, "numbers must be finite")
    return values


def _bbox(params: Mapping[str, str]) -> tuple[float, float, float, float] | None:
    text = (params.get("bbox") or "").strip()
    if not text:
        if params.get("bbox-crs"):
            raise InvalidParameterError("bbox-crs", "given without bbox")
        return None
    values = _numbers(text, "bbox")
    if len(values) == 6:  # minx, miny, minz, maxx, maxy, maxz: the heights do not filter
        values = [values[0], values[1], values[3], values[4]]
    if len(values) != 4:
        raise InvalidParameterError("bbox", "a bbox is 4 or 6 numbers")
    x1, y1, x2, y2 = values
    return x1, y1, x2, y2


def _add_bbox(box: tuple[float, float, float, float], params: Mapping[str, str],
              query: dict[str, str], spatial: OutputCrs | None) -> None:
    crs = parse_crs(params.get("bbox-crs"), "bbox-crs")
    a1, b1, a2, b2 = box
    if crs.swap:  # given as (lat, lon) or (northing, easting)
        a1, b1, a2, b2 = b1, a1, b2, a2
    if b1 > b2:
        raise InvalidParameterError("bbox", "the lower corner is above the upper corner")
    if a1 > a2 and crs.wkid != 4326:
        raise InvalidParameterError("bbox", "the lower corner is right of the upper corner")
    if spatial is not None:
        # The filter has a spatial predicate already: the box joins it (same CRS only).
        if spatial.wkid != crs.wkid:
            raise InvalidParameterError("bbox-crs", "a bbox with a spatial filter must be in "
                                        "the filter's CRS (filter-crs)")
        existing = orjson.loads(query["geometry"])
        if query.get("spatialRel") != "esriSpatialRelIntersects" or "distance" in query:
            raise InvalidParameterError("bbox", "a bbox cannot be combined with this spatial "
                                        "filter; put it in the filter as S_INTERSECTS")
        if a1 > a2:
            raise InvalidParameterError("bbox", "a bbox across the antimeridian cannot be "
                                        "combined with a spatial filter")
        query["geometry"] = orjson.dumps(_intersection(existing, (a1, b1, a2, b2))).decode()
        query["geometryType"] = "esriGeometryPolygon"
        return
    if a1 > a2:  # across the antimeridian (Part 1): the two boxes either side of it
        geometry: dict[str, Any] = {"type": "MultiPolygon", "coordinates": [
            _ring(a1, b1, 180.0, b2), _ring(-180.0, b1, a2, b2)]}
        query.update({"geometry": orjson.dumps(geometry).decode(),
                      "geometryType": "esriGeometryPolygon"})
    else:
        query.update({"geometry": f"{a1!r},{b1!r},{a2!r},{b2!r}",
                      "geometryType": "esriGeometryEnvelope"})
    query.update({"inSR": str(crs.wkid), "spatialRel": "esriSpatialRelIntersects"})


def _ring(x1: float, y1: float, x2: float, y2: float) -> list[list[list[float]]]:
    return [[[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]]]


def _intersection(geometry: dict[str, Any], box: tuple[float, float, float, float]
                  ) -> dict[str, Any]:
    import shapely
    from shapely.geometry import box as make_box
    from shapely.geometry import mapping, shape

    clipped = shapely.intersection(shape(geometry), make_box(*box))
    if clipped.is_empty:  # nothing can match: a tiny box far from any data
        return {"type": "Polygon", "coordinates": _ring(0.0, -90.0, 1e-12, -90.0 + 1e-12)}
    return dict(mapping(clipped))


def _filter(params: Mapping[str, str], schema: LayerSchema, clauses: list[str],
            query: dict[str, str]) -> OutputCrs | None:
    """Adds the filter's where clause and spatial filter; returns the spatial filter's CRS."""
    text = params.get("filter")
    if params.get("filter-lang") and not text:
        raise InvalidParameterError("filter-lang", "given without filter")
    if not text:
        if params.get("filter-crs"):
            raise InvalidParameterError("filter-crs", "given without filter")
        return None
    crs = parse_crs(params.get("filter-crs"), "filter-crs")
    node = parse_filter(text, params.get("filter-lang"))
    found = to_geoservices(node, schema, parameter="filter", in_sr=str(crs.wkid),
                           swap_xy=crs.swap)
    where = found.pop("where", "")
    if where:
        clauses.append(where)
    query.update(found)
    return crs if "geometry" in found else None


def _datetime(text: str, schema: LayerSchema, clauses: list[str], query: dict[str, str]
              ) -> None:
    """``datetime`` against the layer's timeInfo fields (``time``), else its only date field.

    A layer with no date field has no temporal geometry: the parameter selects every feature.
    """
    start, end = _interval(text)
    info = schema.metadata.get("timeInfo")
    if isinstance(info, dict) and schema.field(str(info.get("startTimeField") or "")):
        query["time"] = f"{_ms_or_null(start)},{_ms_or_null(end)}"
        return
    dates = [f for f in schema.fields if f.type == DATE]
    if len(dates) != 1:
        return
    name = _name(dates[0])
    if start is not None:
        clauses.append(f"{name} >= {_timestamp(start)}")
    if end is not None:
        clauses.append(f"{name} <= {_timestamp(end)}")


def _interval(text: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    parts = text.strip().split("/")
    if len(parts) == 1:
        start, end = _instant(parts[0], end=False), _instant(parts[0], end=True)
        if start is None:
            raise InvalidParameterError("datetime", "an instant cannot be open ('..')")
        return start, end
    if len(parts) != 2:
        raise InvalidParameterError("datetime", "expected an instant or start/end")
    start, end = _instant(parts[0], end=False), _instant(parts[1], end=True)
    if start is None and end is None and parts[0].strip() != ".." and parts[1].strip() != "..":
        raise InvalidParameterError("datetime", "an interval needs at least one end")
    if start is not None and end is not None and start > end:
        raise InvalidParameterError("datetime", "the start is after the end")
    return start, end


def _instant(text: str, *, end: bool) -> dt.datetime | None:
    """A RFC 3339 date-time or a date (the whole day), UTC; None for an open end."""
    text = text.strip()
    if text in ("", ".."):
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
            return day + dt.timedelta(days=1, milliseconds=-1) if end else day
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?"
                            r"([Zz]|[+-]\d{2}:\d{2})?", text):
            raise ValueError(text)
        moment = dt.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameterError("datetime", f"{text[:40]!r} is not an RFC 3339 date-time "
                                    "or date") from None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _ms_or_null(moment: dt.datetime | None) -> str:
    return "null" if moment is None else str(int(moment.timestamp() * 1000))


def _timestamp(moment: dt.datetime) -> str:
    return f"timestamp '{moment.strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]}'"


def _properties(text: str | None, schema: LayerSchema) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        found = schema.field(part)
        if found is None:
            raise InvalidParameterError("properties", f"{part[:60]!r} is not a property of "
                                        "this collection")
        names.append(found.name)
    return tuple(dict.fromkeys(names))


def _sortby(text: str | None, schema: LayerSchema) -> str:
    keys = []
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        descending = part.startswith("-")
        name = part.lstrip("+-").strip()
        found = schema.field(name)
        if found is None:
            raise InvalidParameterError("sortby", f"{name[:60]!r} is not a sortable property")
        keys.append(f"{found.name} {'DESC' if descending else 'ASC'}")
    return ",".join(keys)


def _name(found: Field) -> str:
    return _quoted(found.name)


def _quoted(name: str) -> str:
    # Always quoted: a field may be named like an SQL keyword ("when", "order").
    return '"' + name.replace('"', '""') + '"'


def _literal(found: Field, value: str, parameter: str) -> str:
    """A property filter's value as a literal of the field's type."""
    if found.type == STRING:
        return "'" + value.replace("'", "''") + "'"
    if found.type == DATE:
        moment = _instant(value, end=False)
        if moment is None:
            raise InvalidParameterError(parameter, "expected a date-time")
        return _timestamp(moment)
    if found.boolean and value.lower() in ("true", "false"):
        return "1" if value.lower() == "true" else "0"
    if not _NUMBER.match(value.strip()):
        raise InvalidParameterError(parameter, f"{value[:40]!r} is not a number")
    number = float(value)
    if found.type not in (DOUBLE,) and number != int(number):
        raise InvalidParameterError(parameter, f"{value[:40]!r} is not an integer")
    if found.type == OID or found.type != DOUBLE:
        return str(int(number))
    return repr(number)


__all__ = ["FEATURE_PARAMETERS", "ITEMS_PARAMETERS", "FilterError", "ItemsRequest",
           "WGS84_LONLAT", "read_feature", "read_items", "unknown_parameters"]
