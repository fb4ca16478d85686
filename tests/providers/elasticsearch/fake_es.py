"""A local server speaking the part of the Elasticsearch REST API the provider uses.

Built from the published reference (Search API, Query DSL, Count API, Get mapping API,
Aggregations, Paginate search results, REST API error bodies), over documents held in memory
in columns, so that hundreds of thousands of documents answer in a fraction of a second:

    GET|POST /<index>/_search   query, from, size (index.max_result_window), sort, search_after,
                                _source, track_total_hits, aggs (value_count, min, max, avg,
                                sum, stats, extended_stats, geo_bounds, composite)
    GET|POST /<index>/_count    query
    GET      /<index>/_mapping
    Query DSL: match_all, bool (filter/must/should/must_not/minimum_should_match), term
    (case_insensitive), terms, range (format epoch_millis), wildcard (case_insensitive),
    prefix, exists, ids, geo_bounding_box, geo_distance, geo_shape (intersects, within,
    contains, disjoint on geo_point and geo_shape fields).

``<index>`` may be a comma list, a pattern (``parcels*``) or an alias. Errors have the
reference's shape ``{"error": {"root_cause": [...], "type", "reason"}, "status"}``. Auth:
``ApiKey <key>`` or ``Basic`` when the server is given credentials (401
``security_exception`` otherwise; 403 for indices in ``forbidden``). Not a search engine:
no scoring, no analysis (text is matched as its keyword), one shard, no multi-valued fields.
"""

from __future__ import annotations

import base64
import fnmatch
import math
import operator as operator_module
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import orjson
import shapely

NUMERIC = {"long", "integer", "short", "byte", "double", "float", "half_float",
           "scaled_float", "unsigned_long"}
TEXT = {"keyword", "text", "constant_keyword", "wildcard", "match_only_text"}
EARTH_RADIUS = 6_371_008.8


class ESError(Exception):
    """An error answer: status, type, reason."""

    def __init__(self, status: int, kind: str, reason: str, wrapper: str | None = None) -> None:
        super().__init__(reason)
        self.status, self.kind, self.reason, self.wrapper = status, kind, reason, wrapper

    def body(self) -> dict[str, Any]:
        cause = {"type": self.kind, "reason": self.reason}
        top = ({"type": self.wrapper, "reason": "all shards failed", "phase": "query",
                "grouped": True, "failed_shards": [{"shard": 0, "reason": cause}],
                "caused_by": cause} if self.wrapper else dict(cause))
        return {"error": {"root_cause": [cause], **top}, "status": self.status}


def _parse_date(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, (int, float)):
        return float(value)
    import datetime as dt

    text = str(value).strip().replace("Z", "+00:00")
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return float(text) if text.lstrip("-").isdigit() else math.nan
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp() * 1000.0


def _point(value: Any) -> tuple[float, float]:
    if value is None:
        return math.nan, math.nan
    if isinstance(value, Mapping):
        if "coordinates" in value:
            return float(value["coordinates"][0]), float(value["coordinates"][1])
        return float(value["lon"]), float(value["lat"])
    if isinstance(value, (list, tuple)):
        return float(value[0]), float(value[1])
    text = str(value)
    if text.upper().startswith("POINT"):
        geom = shapely.from_wkt(text)
        return geom.x, geom.y
    lat, lon = text.split(",")
    return float(lon), float(lat)


def _shape(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return shapely.from_wkt(value)
    if str(value.get("type")).lower() == "envelope":
        (xmin, ymax), (xmax, ymin) = value["coordinates"]
        return shapely.box(xmin, ymin, xmax, ymax)
    return shapely.from_geojson(orjson.dumps(value))


@dataclass
class Index:
    """An index: its mapping and its documents, by column."""

    name: str
    properties: dict[str, Any]
    max_result_window: int = 10_000
    ids: list[str] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    columns: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.ids)

    def kind(self, name: str) -> tuple[str, str]:
        """(column, type) of a field path (``name.keyword`` is the keyword of ``name``)."""
        base = name.split(".", 1)[0]
        spec = self.properties.get(base)
        if spec is None:
            return base, ""
        if "." in name:
            sub = (spec.get("fields") or {}).get(name.split(".", 1)[1])
            return base, (sub or {}).get("type", "")
        return base, spec.get("type", "object")

    def load(self, documents: Iterable[tuple[str, dict[str, Any]]]) -> None:
        for doc_id, source in documents:
            self.ids.append(str(doc_id))
            self.sources.append(source)
        self.columns = {}
        for name, spec in self.properties.items():
            kind = spec.get("type")
            values = [s.get(name) for s in self.sources]
            if kind in NUMERIC:
                self.columns[name] = np.array([math.nan if v is None else float(v)
                                               for v in values])
            elif kind == "boolean":
                self.columns[name] = np.array([math.nan if v is None else float(
                    v in (True, "true")) for v in values])
            elif kind in ("date", "date_nanos"):
                self.columns[name] = np.array([_parse_date(v) for v in values])
            elif kind == "geo_point":
                xy = np.array([_point(v) for v in values], dtype=float).reshape(-1, 2)
                self.columns[name] = xy
            elif kind == "geo_shape":
                self.columns[name] = np.array([_shape(v) for v in values], dtype=object)
            else:
                self.columns[name] = np.array(values, dtype=object)
        self._lower: dict[str, np.ndarray] = {}

    def lowered(self, column: str) -> np.ndarray:
        if column not in self._lower:
            self._lower[column] = np.array([v.lower() if isinstance(v, str) else v
                                            for v in self.columns[column]], dtype=object)
        return self._lower[column]

    def present(self, column: str) -> np.ndarray:
        values = self.columns[column]
        if values.dtype == object:
            return np.array([v is not None for v in values], dtype=bool)
        if values.ndim == 2:
            return ~np.isnan(values[:, 0])
        return ~np.isnan(values)


# --- query DSL ----------------------------------------------------------------------------------

def evaluate(index: Index, query: Any) -> np.ndarray:
    """The documents ``query`` matches, as a boolean mask."""
    if not isinstance(query, Mapping) or len(query) != 1:
        raise ESError(400, "parsing_exception", "[_na] query malformed, must start with "
                      "start_object")
    (name, body), = query.items()
    handler = QUERIES.get(name)
    if handler is None:
        raise ESError(400, "parsing_exception", f"unknown query [{name}]")
    return handler(index, body)


def _single(body: Any, query: str) -> tuple[str, Any]:
    items = [(k, v) for k, v in body.items() if k not in ("boost", "_name")]
    if len(items) != 1:
        raise ESError(400, "parsing_exception", f"[{query}] query doesn't support multiple "
                      "fields")
    return items[0]


def _column(index: Index, path: str, query: str) -> tuple[str, str]:
    column, kind = index.kind(path)
    if not kind:
        return column, ""  # an unmapped field matches nothing, as in Elasticsearch
    return column, kind


def _coerce(kind: str, value: Any) -> Any:
    if kind in NUMERIC:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ESError(400, "query_shard_exception", f"failed to create query: For input "
                          f"string: \"{value}\"") from None
    if kind == "boolean":
        return float(value in (True, "true", 1))
    if kind in ("date", "date_nanos"):
        return _parse_date(value)
    return value


def _none(index: Index) -> np.ndarray:
    return np.zeros(index.size, dtype=bool)


def q_match_all(index: Index, body: Any) -> np.ndarray:
    return np.ones(index.size, dtype=bool)


def q_bool(index: Index, body: Mapping[str, Any]) -> np.ndarray:
    def clauses(key: str) -> list[Any]:
        value = body.get(key) or []
        return value if isinstance(value, list) else [value]

    unknown = set(body) - {"filter", "must", "should", "must_not", "minimum_should_match",
                           "boost", "_name"}
    if unknown:
        raise ESError(400, "parsing_exception", f"[bool] query does not support "
                      f"[{sorted(unknown)[0]}]")
    mask = np.ones(index.size, dtype=bool)
    for clause in clauses("filter") + clauses("must"):
        mask &= evaluate(index, clause)
    should = clauses("should")
    if should:
        minimum = body.get("minimum_should_match",
                           0 if clauses("filter") + clauses("must") else 1)
        hits = np.zeros(index.size, dtype=int)
        for clause in should:
            hits += evaluate(index, clause)
        mask &= hits >= int(minimum)
    for clause in clauses("must_not"):
        mask &= ~evaluate(index, clause)
    return mask


def q_term(index: Index, body: Mapping[str, Any]) -> np.ndarray:
    path, spec = _single(body, "term")
    value = spec.get("value") if isinstance(spec, Mapping) else spec
    insensitive = isinstance(spec, Mapping) and spec.get("case_insensitive") is True
    column, kind = _column(index, path, "term")
    if not kind:
        return _none(index)
    if kind in TEXT:
        if insensitive:
            return index.lowered(column) == str(value).lower()
        return index.columns[column] == str(value)
    return index.columns[column] == _coerce(kind, value)


def q_terms(index: Index, body: Mapping[str, Any]) -> np.ndarray:
    path, values = _single(body, "terms")
    if not isinstance(values, list):
        raise ESError(400, "parsing_exception", "[terms] query does not support lookups here")
    column, kind = _column(index, path, "terms")
    if not kind:
        return _none(index)
    if kind in TEXT:
        wanted = {str(v) for v in values}
        return np.fromiter((v in wanted for v in index.columns[column]), bool, index.size)
    return np.isin(index.columns[column], [_coerce(kind, v) for v in values])


def q_ids(index: Index, body: Mapping[str, Any]) -> np.ndarray:
    wanted = {str(v) for v in body.get("values") or []}
    return np.fromiter((i in wanted for i in index.ids), bool, index.size)


def q_exists(index: Index, body: Mapping[str, Any]) -> np.ndarray:
    column, kind = _column(index, str(body.get("field")), "exists")
    return index.present(column) if kind else _none(index)


def q_range(index: Index, body: Mapping[str, Any]) -> np.ndarray:
    path, spec = _single(body, "range")
    column, kind = _column(index, path, "range")
    if not kind:
        return _none(index)
    values = index.columns[column]
    mask = index.present(column)
    for operator in ("gt", "gte", "lt", "lte"):
        if operator not in spec or spec[operator] is None:
            continue
        bound = spec[operator]
        if kind in ("date", "date_nanos") and spec.get("format") == "epoch_millis":
            bound = float(bound)
        else:
            bound = _coerce(kind, bound)
        if kind in TEXT:
            compare = {"gt": operator_module.gt, "gte": operator_module.ge,
                       "lt": operator_module.lt, "lte": operator_module.le}[operator]
            mask &= np.fromiter((v is not None and compare(v, bound) for v in values), bool,
                                index.size)
        else:
            with np.errstate(invalid="ignore"):
                mask &= {"gt": values > bound, "gte": values >= bound, "lt": values < bound,
                         "lte": values <= bound}[operator]
    return mask


def _pattern(text: str, wildcard: bool) -> str:
    out, i = [], 0
    while i < len(text):
        char = text[i]
        if wildcard and char == "\\" and i + 1 < len(text):
            out.append(re.escape(text[i + 1]))
            i += 2
            continue
        if wildcard and char == "*":
            out.append(".*")
        elif wildcard and char == "?":
            out.append(".")
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def _matching(index: Index, body: Mapping[str, Any], query: str, wildcard: bool) -> np.ndarray:
    path, spec = _single(body, query)
    value = spec.get("value") if isinstance(spec, Mapping) else spec
    insensitive = isinstance(spec, Mapping) and spec.get("case_insensitive") is True
    column, kind = _column(index, path, query)
    if not kind:
        return _none(index)
    if kind not in TEXT:
        raise ESError(400, "query_shard_exception", f"Can only use {query} queries on keyword "
                      f"and text fields - not on [{path}] which is of type [{kind}]")
    regex = re.compile(_pattern(str(value), wildcard) + ("" if wildcard else ".*"),
                       re.DOTALL | (re.IGNORECASE if insensitive else 0))
    return np.fromiter((isinstance(v, str) and regex.fullmatch(v) is not None
                        for v in index.columns[column]), bool, index.size)


def q_wildcard(index: Index, body: Mapping[str, Any]) -> np.ndarray:
    return _matching(index, body, "wildcard", True)


def q_prefix(index: Index, body: Mapping[str, Any]) -> np.ndarray:
    return _matching(index, body, "prefix", False)


def _geo_column(index: Index, path: str, query: str) -> tuple[str, str]:
    column, kind = _column(index, path, query)
    if kind not in ("geo_point", "geo_shape"):
        raise ESError(400, "query_shard_exception", f"failed to find geo field [{path}]")
    return column, kind


def q_geo_bounding_box(index: Index, body: Mapping[str, Any]) -> np.ndarray:
    path, spec = _single(body, "geo_bounding_box")
    column, kind = _geo_column(index, path, "geo_bounding_box")
    top_left, bottom_right = spec["top_left"], spec["bottom_right"]
    xmin, ymax = float(top_left["lon"]), float(top_left["lat"])
    xmax, ymin = float(bottom_right["lon"]), float(bottom_right["lat"])
    if kind == "geo_shape":
        return _shape_relation(index, column, shapely.box(xmin, ymin, xmax, ymax), "intersects")
    xy = index.columns[column]
    with np.errstate(invalid="ignore"):
        return (xy[:, 0] >= xmin) & (xy[:, 0] <= xmax) & (xy[:, 1] >= ymin) & (xy[:, 1] <= ymax)


_UNITS = {"m": 1.0, "km": 1000.0, "mi": 1609.344, "yd": 0.9144, "ft": 0.3048}


def q_geo_distance(index: Index, body: Mapping[str, Any]) -> np.ndarray:
    spec = {k: v for k, v in body.items() if k not in ("distance", "distance_type",
                                                       "validation_method", "_name")}
    (path, centre), = spec.items()
    match = re.fullmatch(r"([0-9.eE+-]+)\s*([a-z]*)", str(body["distance"]).strip())
    if not match:
        raise ESError(400, "parse_exception", f"failed to parse distance [{body['distance']}]")
    meters = float(match[1]) * _UNITS.get(match[2] or "m", 1.0)
    column, kind = _geo_column(index, path, "geo_distance")
    if kind != "geo_point":
        raise ESError(400, "query_shard_exception", "geo_distance needs a geo_point field here")
    lon0, lat0 = _point(centre)
    xy = index.columns[column]
    lon, lat = np.radians(xy[:, 0]), np.radians(xy[:, 1])
    phi0, lam0 = math.radians(lat0), math.radians(lon0)
    a = np.sin((lat - phi0) / 2) ** 2 + np.cos(lat) * math.cos(phi0) * np.sin(
        (lon - lam0) / 2) ** 2
    with np.errstate(invalid="ignore"):
        return 2 * EARTH_RADIUS * np.arcsin(np.sqrt(np.clip(a, 0, 1))) <= meters


def _shape_relation(index: Index, column: str, shape: Any, relation: str) -> np.ndarray:
    values = index.columns[column]
    if values.dtype != object:  # geo_point: points against the shape
        xy = values
        inside = shapely.intersects_xy(shape, xy[:, 0], xy[:, 1]) & ~np.isnan(xy[:, 0])
        if relation in ("intersects", "within"):
            return inside
        if relation == "disjoint":
            return ~inside & ~np.isnan(xy[:, 0])
        raise ESError(400, "query_shard_exception", f"[{relation}] query relation not "
                      "supported for Field [point]")
    present = np.array([v is not None for v in values], dtype=bool)
    out = np.zeros(index.size, dtype=bool)
    geoms = values[present]
    predicate = {"intersects": shapely.intersects, "within": shapely.within,
                 "contains": shapely.contains, "disjoint": shapely.disjoint}[relation]
    if len(geoms):
        out[present] = predicate(geoms.astype(object), shape)
    return out


def q_geo_shape(index: Index, body: Mapping[str, Any]) -> np.ndarray:
    path, spec = _single(body, "geo_shape")
    column, _ = _geo_column(index, path, "geo_shape")
    relation = str(spec.get("relation") or "intersects").lower()
    if relation not in ("intersects", "within", "contains", "disjoint"):
        raise ESError(400, "parsing_exception", f"Unknown shape relation [{relation}]")
    try:
        shape = _shape(spec["shape"])
    except (KeyError, TypeError, ValueError, shapely.errors.GEOSException) as exc:
        raise ESError(400, "parse_exception", f"failed to parse shape: {exc}") from None
    return _shape_relation(index, column, shape, relation)


QUERIES = {"match_all": q_match_all, "bool": q_bool, "term": q_term, "terms": q_terms,
           "ids": q_ids, "exists": q_exists, "range": q_range, "wildcard": q_wildcard,
           "prefix": q_prefix, "geo_bounding_box": q_geo_bounding_box,
           "geo_distance": q_geo_distance, "geo_shape": q_geo_shape}


# --- sort, search_after ---------------------------------------------------------------------

@dataclass
class SortKey:
    column: str | None  # None: _doc
    kind: str
    descending: bool
    missing_first: bool


def sort_keys(index: Index, sort: Any) -> list[SortKey]:
    keys = []
    for item in sort if isinstance(sort, list) else [sort]:
        if isinstance(item, str):
            path, spec = item, {}
        else:
            (path, spec), = item.items()
            spec = {"order": spec} if isinstance(spec, str) else spec
        if path in ("_doc", "_shard_doc"):
            keys.append(SortKey(None, "", spec.get("order") == "desc", False))
            continue
        if path == "_id":
            raise ESError(400, "illegal_argument_exception", "Fielddata access on the _id "
                          "field is disallowed, the setting [indices.id_field_data.enabled] "
                          "can be used to change this")
        column, kind = index.kind(path)
        if kind in ("text", "match_only_text"):
            raise ESError(400, "illegal_argument_exception", f"Text fields are not optimised "
                          f"for operations that require per-document field data like "
                          f"aggregations and sorting, so these operations are disabled by "
                          f"default. Please use a keyword field instead. [{path}]",
                          "search_phase_execution_exception")
        if not kind:
            raise ESError(400, "query_shard_exception", f"No mapping found for [{path}] in "
                          "order to sort on", "search_phase_execution_exception")
        descending = spec.get("order", "asc") == "desc"
        missing = spec.get("missing", "_last")
        keys.append(SortKey(column, kind, descending, missing == "_first"))
    return keys


def _rank(index: Index, key: SortKey, rows: np.ndarray) -> np.ndarray:
    """Per row, a float that sorts as the key wants (missing at its place)."""
    if key.column is None:
        values = rows.astype(float)
    else:
        raw = index.columns[key.column][rows]
        if raw.dtype == object:
            present = np.array([v is not None for v in raw], dtype=bool)
            values = np.full(len(rows), np.nan)
            if present.any():
                _, inverse = np.unique(raw[present].astype(str), return_inverse=True)
                values[present] = inverse
        else:
            values = raw.astype(float)
    if key.descending:
        values = -values
    missing = np.isnan(values)
    return np.where(missing, -np.inf if key.missing_first else np.inf, values)


def _sort_value(index: Index, key: SortKey, row: int) -> Any:
    if key.column is None:
        return row
    value = index.columns[key.column][row]
    if isinstance(value, float) or isinstance(value, np.floating):
        if math.isnan(value):
            return None
        if key.kind in ("long", "integer", "short", "byte", "date", "date_nanos", "boolean"):
            return int(value)
        return float(value)
    return value


def _compare(a: Any, b: Any, key: SortKey) -> int:
    """-1/0/1: how value ``a`` sorts against ``b`` under ``key`` (None: missing)."""
    if a is None or b is None:
        if a is None and b is None:
            return 0
        first = -1 if key.missing_first else 1
        return first if a is None else -first
    if isinstance(a, str) != isinstance(b, str):
        a, b = str(a), str(b)
    result = (a > b) - (a < b)
    return -result if key.descending else result


# --- aggregations -------------------------------------------------------------------------------

def _metric(index: Index, kind: str, spec: Mapping[str, Any], rows: np.ndarray) -> Any:
    column, field_kind = index.kind(str(spec.get("field")))
    if not field_kind:
        return {"value": None} if kind != "value_count" else {"value": 0}
    if field_kind in ("text", "match_only_text"):
        raise ESError(400, "illegal_argument_exception", "Text fields are not optimised for "
                      "operations that require per-document field data like aggregations",
                      "search_phase_execution_exception")
    if kind == "geo_bounds":
        values = index.columns[column]
        if values.dtype == object:
            geoms = [g for g in values[rows] if g is not None]
            if not geoms:
                return {}
            xmin, ymin, xmax, ymax = shapely.total_bounds(np.array(geoms, dtype=object))
        else:
            xy = values[rows]
            xy = xy[~np.isnan(xy[:, 0])]
            if not len(xy):
                return {}
            xmin, ymin = xy.min(axis=0)
            xmax, ymax = xy.max(axis=0)
        return {"bounds": {"top_left": {"lat": float(ymax), "lon": float(xmin)},
                           "bottom_right": {"lat": float(ymin), "lon": float(xmax)}}}
    values = index.columns[column][rows]
    if values.dtype == object:
        present = [v for v in values if v is not None]
        if kind == "value_count":
            return {"value": len(present)}
        raise ESError(400, "illegal_argument_exception", f"Field [{spec.get('field')}] of "
                      f"type [{field_kind}] is not supported for aggregation [{kind}]")
    present = values[~np.isnan(values)]
    count = len(present)
    total = float(present.sum()) if count else 0.0
    low = float(present.min()) if count else None
    high = float(present.max()) if count else None
    average = total / count if count else None
    if kind == "value_count":
        return {"value": count}
    if kind in ("min", "max", "avg", "sum"):
        return {"value": {"min": low, "max": high, "avg": average, "sum": total}[kind]}
    stats = {"count": count, "min": low, "max": high, "avg": average, "sum": total}
    if kind == "extended_stats":
        stats["sum_of_squares"] = float((present ** 2).sum()) if count else None
        stats["variance"] = float(present.var()) if count else None
        stats["std_deviation"] = float(present.std()) if count else None
    return stats


METRICS = {"value_count", "min", "max", "avg", "sum", "stats", "extended_stats", "geo_bounds"}


def aggregate(index: Index, aggs: Mapping[str, Any], rows: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in aggs.items():
        kinds = [k for k in spec if k not in ("aggs", "aggregations", "meta")]
        if len(kinds) != 1:
            raise ESError(400, "parsing_exception", f"Expected [START_OBJECT] under [{name}]")
        kind = kinds[0]
        if kind in METRICS:
            out[name] = _metric(index, kind, spec[kind], rows)
        elif kind == "composite":
            out[name] = _composite(index, spec[kind], spec.get("aggs") or
                                   spec.get("aggregations") or {}, rows)
        else:
            raise ESError(400, "parsing_exception", f"Unknown aggregation type [{kind}]")
    return out


def _composite(index: Index, spec: Mapping[str, Any], sub: Mapping[str, Any],
               rows: np.ndarray) -> dict[str, Any]:
    sources = []
    for source in spec["sources"]:
        (name, body), = source.items()
        (kind, terms), = body.items()
        if kind != "terms":
            raise ESError(400, "parsing_exception", f"unsupported composite source [{kind}]")
        column, field_kind = index.kind(str(terms["field"]))
        if field_kind in ("text", "match_only_text"):
            raise ESError(400, "illegal_argument_exception", "Text fields are not optimised "
                          "for aggregations", "search_phase_execution_exception")
        sources.append((name, column, field_kind, bool(terms.get("missing_bucket")),
                        terms.get("order", "asc") == "desc"))
    groups: dict[tuple[Any, ...], list[int]] = {}
    for row in rows.tolist():
        key = []
        skip = False
        for _, column, kind, missing_bucket, _ in sources:
            value = _sort_value(index, SortKey(column, kind, False, True), row) if kind else None
            if value is None and not missing_bucket:
                skip = True
                break
            key.append(value)
        if not skip:
            groups.setdefault(tuple(key), []).append(row)
    keys = [SortKey("", "", desc, True) for *_, desc in sources]  # missing first (asc)

    def before(a: tuple[Any, ...], b: tuple[Any, ...]) -> int:
        for x, y, key in zip(a, b, keys, strict=True):
            result = _compare(x, y, key)
            if result:
                return result
        return 0

    import functools

    ordered = sorted(groups, key=functools.cmp_to_key(before))
    after = spec.get("after")
    if after:
        mark = tuple(after.get(name) for name, *_ in sources)
        ordered = [k for k in ordered if before(k, mark) > 0]
    page = ordered[:int(spec.get("size", 10))]
    buckets = []
    for key in page:
        members = np.array(groups[key], dtype=int)
        bucket = {"key": {name: value for (name, *_), value in zip(sources, key, strict=True)},
                  "doc_count": len(members)}
        bucket.update(aggregate(index, sub, members))
        buckets.append(bucket)
    out: dict[str, Any] = {"buckets": buckets}
    if page:
        out["after_key"] = buckets[-1]["key"]
    return out


# --- the server -------------------------------------------------------------------------------

class FakeElasticsearch:
    """Indices, aliases and credentials; ``start()`` serves them on 127.0.0.1."""

    def __init__(self, *, api_key: str | None = None, user: tuple[str, str] | None = None,
                 forbidden: Iterable[str] = ()) -> None:
        self.indices: dict[str, Index] = {}
        self.aliases: dict[str, list[str]] = {}
        self.api_key, self.user = api_key, user
        self.forbidden = set(forbidden)
        self.requests: list[dict[str, Any]] = []
        self.delay = 0.0  # seconds before each answer (timeouts)
        self.broken = False  # answer garbage instead of JSON
        self.timed_out = False  # searches stop at their timeout with partial hits
        self.throttled = False  # 429 es_rejected_execution_exception
        self._server: ThreadingHTTPServer | None = None

    def add_index(self, name: str, properties: dict[str, Any],
                  documents: Iterable[tuple[str, dict[str, Any]]], *,
                  max_result_window: int = 10_000) -> Index:
        index = Index(name, properties, max_result_window)
        index.load(documents)
        self.indices[name] = index
        return index

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> FakeElasticsearch:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self)

            do_POST = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # --- requests -----------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        record = {"method": handler.command, "path": parts.path, "query": parse_qs(parts.query),
                  "body": orjson.loads(raw) if raw.strip() else None,
                  "authorization": handler.headers.get("Authorization")}
        self.requests.append(record)
        if self.delay:
            time.sleep(self.delay)
        try:
            self._authenticate(handler.headers.get("Authorization"), parts.path)
            if self.throttled:
                raise ESError(429, "es_rejected_execution_exception", "rejected execution of "
                              "coordinating operation")
            status, body = 200, self._route(handler.command, parts.path, record["body"])
        except ESError as exc:
            status, body = exc.status, exc.body()
        payload = b"<html>gateway</html>" if self.broken else orjson.dumps(body)
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json; charset=UTF-8")
            handler.send_header("Content-Length", str(len(payload)))
            if status == 401:
                handler.send_header("WWW-Authenticate", 'Basic realm="security" charset="UTF-8"')
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def _authenticate(self, header: str | None, path: str) -> None:
        if self.api_key is None and self.user is None:
            return
        accepted = []
        if self.api_key is not None:
            accepted.append(f"ApiKey {self.api_key}")
        if self.user is not None:
            accepted.append("Basic " + base64.b64encode(":".join(self.user).encode()).decode())
        if not header:
            raise ESError(401, "security_exception", "missing authentication credentials for "
                          f"REST request [{path}]")
        if header not in accepted:
            raise ESError(401, "security_exception", "unable to authenticate with provided "
                          "credentials and anonymous access is not allowed for this request")

    def resolve(self, expression: str) -> list[Index]:
        found: list[Index] = []
        for part in expression.split(","):
            names = self.aliases.get(part) or [n for n in self.indices
                                               if fnmatch.fnmatchcase(n, part)]
            if not names and "*" not in part:
                raise ESError(404, "index_not_found_exception", f"no such index [{part}]")
            for name in names:
                if name in self.forbidden:
                    raise ESError(403, "security_exception", "action [indices:data/read/search]"
                                  f" is unauthorized for user [reader] on indices [{name}]")
                found.append(self.indices[name])
        return found

    def _route(self, method: str, path: str, body: Any) -> dict[str, Any]:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if len(parts) != 2 or not parts[1].startswith("_"):
            raise ESError(400, "illegal_argument_exception", f"unsupported path [{path}]")
        indices = self.resolve(parts[0])
        if parts[1] == "_mapping" and method == "GET":
            return {i.name: {"mappings": {"properties": i.properties}} for i in indices}
        if len(indices) != 1:
            if not indices:
                return self._empty(parts[1])
            raise ESError(400, "illegal_argument_exception", "the fake searches one index")
        index = indices[0]
        body = body or {}
        if parts[1] == "_count":
            unknown = set(body) - {"query"}
            if unknown:
                raise ESError(400, "parsing_exception", f"request does not support "
                              f"[{sorted(unknown)[0]}]")
            return {"count": int(evaluate(index, body.get("query", {"match_all": {}})).sum()),
                    "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}}
        if parts[1] == "_search":
            return self._search(index, body)
        raise ESError(400, "illegal_argument_exception", f"unsupported endpoint [{parts[1]}]")

    @staticmethod
    def _empty(endpoint: str) -> dict[str, Any]:
        if endpoint == "_count":
            return {"count": 0}
        return {"took": 0, "timed_out": False, "hits": {"total": {"value": 0, "relation": "eq"},
                                                         "hits": []}}

    def _search(self, index: Index, body: Mapping[str, Any]) -> dict[str, Any]:
        known = {"query", "from", "size", "sort", "search_after", "_source",
                 "track_total_hits", "aggs", "aggregations", "timeout"}
        unknown = set(body) - known
        if unknown:
            raise ESError(400, "parsing_exception", f"Unknown key for a VALUE_STRING in "
                          f"[{sorted(unknown)[0]}].")
        start, size = int(body.get("from", 0)), int(body.get("size", 10))
        after = body.get("search_after")
        if after is not None and start > 0:
            raise ESError(400, "illegal_argument_exception", "[from] parameter must be set to 0 "
                          "when [search_after] is used", "search_phase_execution_exception")
        if start + size > index.max_result_window:
            raise ESError(400, "illegal_argument_exception", "Result window is too large, from "
                          f"+ size must be less than or equal to: [{index.max_result_window}] "
                          f"but was [{start + size}]. See the scroll api for a more efficient "
                          "way to request large data sets. This limit can be set by changing "
                          "the [index.max_result_window] index level setting.",
                          "search_phase_execution_exception")
        mask = evaluate(index, body.get("query", {"match_all": {}}))
        rows = np.flatnonzero(mask)
        keys = sort_keys(index, body.get("sort", ["_doc"]))
        if keys:
            ranks = [_rank(index, key, rows) for key in reversed(keys)]
            rows = rows[np.lexsort(ranks)] if len(rows) else rows
        if after is not None:
            if len(after) != len(keys):
                raise ESError(400, "illegal_argument_exception", f"search_after has "
                              f"{len(after)} value(s) but sort has {len(keys)}.",
                              "search_phase_execution_exception")
            rows = rows[self._first_after(index, keys, rows, after):]
        page = rows[start:start + size]
        hits = [self._hit(index, keys, int(row), body.get("_source", True)) for row in page]
        out: dict[str, Any] = {"took": 1, "timed_out": self.timed_out and "timeout" in body,
                               "_shards": {"total": 1, "successful": 1, "skipped": 0,
                                           "failed": 0},
                               "hits": {"max_score": None, "hits": hits}}
        track = body.get("track_total_hits", 10_000)
        total = int(mask.sum())
        if track is True:
            out["hits"]["total"] = {"value": total, "relation": "eq"}
        elif track is not False:
            out["hits"]["total"] = ({"value": total, "relation": "eq"} if total <= int(track)
                                    else {"value": int(track), "relation": "gte"})
        aggs = body.get("aggs") or body.get("aggregations")
        if aggs:
            out["aggregations"] = aggregate(index, aggs, np.flatnonzero(mask))
        return out

    @staticmethod
    def _first_after(index: Index, keys: list[SortKey], rows: np.ndarray, after: list[Any]
                     ) -> int:
        """Binary search: the first sorted row strictly after the ``after`` values."""
        def later(row: int) -> bool:
            for key, mark in zip(keys, after, strict=True):
                result = _compare(_sort_value(index, key, row), mark, key)
                if result:
                    return result > 0
            return False

        low, high = 0, len(rows)
        while low < high:
            middle = (low + high) // 2
            if later(int(rows[middle])):
                high = middle
            else:
                low = middle + 1
        return low

    @staticmethod
    def _hit(index: Index, keys: list[SortKey], row: int, source_filter: Any) -> dict[str, Any]:
        source = index.sources[row]
        if source_filter is False:
            kept = None
        elif source_filter is True or source_filter is None:
            kept = source
        else:
            includes = source_filter if isinstance(source_filter, list) else (
                source_filter.get("includes") or list(source))
            kept = {k: v for k, v in source.items()
                    if any(fnmatch.fnmatchcase(k, pattern) for pattern in includes)}
        hit: dict[str, Any] = {"_index": index.name, "_id": index.ids[row], "_score": None,
                               "sort": [_sort_value(index, key, row) for key in keys]}
        if kept is not None:
            hit["_source"] = kept
        return hit
