"""Pass-through provider for MarkLogic: documents (search) or rows (Optic) with coordinates.

``/marklogic/rest/services/<server>/<layer>/FeatureServer/0/query``: ``<server>`` names a
configured connection (``KOOP["CONNECTIONS"]["marklogic"]``), ``<layer>`` a layer: a TDE view
``schema.view`` read through ``/v1/rows`` (rows mode), or a collection or directory of JSON
documents read through ``/v1/search`` (search mode). Each request asks MarkLogic again.

Rows mode sends the whole ``where`` as an Optic expression (or answers 400 naming what it cannot
express), envelopes as ranges on numeric latitude/longitude columns, objectIds, ordering,
paging, counts, extents and statistics (``op.groupBy``), all reported in ``filtersApplied``.
Search mode sends what maps to a structured query (``search.py``), envelopes through a
configured geospatial index, and pages with ``start``/``pageLength`` when the order is stable;
otherwise it reads every page (bounded by ``max_records``) and lets the engine filter.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlglot import exp

from koop_app.connections import connection
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
from koop_app.data.values import infer_type, parse_date_ms
from koop_app.errors import InvalidParameterError, OptionsError, SourceFormatError
from koop_app.options import Option
from koop_app.provider import Provider, ProviderRequest
from koop_app.query import Query
from koop_app.query.params import parse_query
from koop_app.query.where import checked_tree

from .client import Client, Server
from .optic import OpticWhere, col, op, plan
from .search import NUMERIC_RANGE_TYPES, SearchWhere, geo_box_query

SCHEMA_SECONDS = 60.0  # how long a layer's columns are trusted before they are read again
PUSHED_STATISTICS = {"count", "sum", "min", "max", "avg"}
ENVELOPE_RELATIONS = {"intersects", "envelope"}
# Service and layer info (no method, or "layers"): fields and extent, not the data.
DESCRIBE_METHODS = {None, "", "layers"}
_POINT_TEXT = re.compile(r"^\s*(-?[\d.]+(?:[eE][-+]?\d+)?)\s*,\s*(-?[\d.]+(?:[eE][-+]?\d+)?)\s*$")
_SMALL_INTEGERS = {"int", "short", "byte", "unsignedShort", "unsignedByte"}
_WIDE_INTEGERS = {"integer", "long", "unsignedInt", "unsignedLong", "nonNegativeInteger",
                  "positiveInteger", "nonPositiveInteger", "negativeInteger"}


def _esri_type(ml_type: str) -> str:
    """The field type of a MarkLogic column type (xs:int -> Integer, xs:dateTime -> Date)."""
    local = ml_type.rpartition(":")[2]
    if local in _SMALL_INTEGERS:
        return INTEGER
    if local in _WIDE_INTEGERS or local in ("double", "float", "decimal"):
        return DOUBLE  # 64-bit integers do not fit the 32-bit Integer type of GeoServices
    if local == "boolean":
        return SMALL_INTEGER
    if local in ("date", "dateTime", "dateTimeStamp"):
        return DATE
    return STRING


def _check_view(value: str) -> str:
    if value and not re.fullmatch(r"[^.\s]+\.[^.\s]+", value):
        raise ValueError("must be schema.view")
    return value


def _check_json(value: str) -> str:
    if value:
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ValueError("must be a JSON object (a structured query)") from None
        if not isinstance(parsed, dict):
            raise ValueError("must be a JSON object (a structured query)")
    return value


def _check_ranges(value: list[str]) -> list[str]:
    for item in value:
        name, _, kind = item.partition(":")
        if not name or kind.removeprefix("xs:") not in NUMERIC_RANGE_TYPES:
            raise ValueError(f"{item!r}: expected property:type with a numeric type "
                             f"({', '.join(sorted(NUMERIC_RANGE_TYPES))})")
    return value


def _between(low: int, high: int):
    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return check


@dataclass(frozen=True)
class LayerInfo:
    """What the provider knows of a layer before asking for rows: its fields and their types."""

    schema: LayerSchema
    column_types: dict[str, str]  # rows mode: MarkLogic's type of each column
    qualifier: str  # rows mode: the prefix of column names in answers ("main.wells.")


_layers: dict[tuple[Any, ...], tuple[float, LayerInfo]] = {}
_layers_lock = threading.Lock()


class MarkLogicProvider(Provider):
    """``/marklogic/rest/services/<server>/<layer>/FeatureServer``: MarkLogic, passed through."""

    name = "marklogic"
    title = "MarkLogic (REST API: search or Optic rows)"
    description = ("Documents or rows with coordinates from a configured MarkLogic server, "
                   "asked on every request: a TDE view through /v1/rows or JSON documents "
                   "through /v1/search, with filters and paging sent to MarkLogic.")
    version = "1.0.0"
    hosts = True
    connection_hosts = True  # the host names a server of KOOP["CONNECTIONS"]["marklogic"]
    cache_policy = "pass-through"
    options_schema = (
        Option("mode", str, default="rows", choices=("rows", "search"), label="Mode",
               help="rows: a TDE view through /v1/rows (Optic); search: JSON documents "
                    "through /v1/search"),
        Option("view", str, default="", check=_check_view, label="View",
               help="rows mode: schema.view (default: the layer id)"),
        Option("collection", list, default=[], label="Collections",
               help="search mode: collection URIs (default: the layer id, unless a directory "
                    "is given)"),
        Option("directory", str, default="", label="Directory",
               help="search mode: a directory URI, e.g. /wells/"),
        Option("string_query", str, default="", label="String query",
               help="search mode: a search string always applied (q)"),
        Option("structured_query", str, default="", check=_check_json,
               label="Structured query", help="search mode: a structured query (JSON) always "
                                              "applied"),
        Option("search_options", str, default="", label="Query options name",
               help="search mode: persisted query options to use (options=)"),
        Option("latitude", str, default="", label="Latitude",
               help="column, or JSON property path (a.b), of the latitude"),
        Option("longitude", str, default="", label="Longitude",
               help="column, or JSON property path (a.b), of the longitude"),
        Option("geometry", str, default="", label="Geometry",
               help="column or JSON property holding a GeoJSON geometry (or 'lat,lon' text)"),
        Option("geo_index", str, default="", choices=("", "pair", "path"),
               label="Geospatial index", help="search mode: the index that answers envelopes: "
                                              "pair (latitude/longitude properties under one "
                                              "parent) or path (geo_path)"),
        Option("geo_path", str, default="", label="Geospatial path index",
               help="search mode: the path of a geospatial path index, e.g. /location"),
        Option("range_indexes", list, default=[], check=_check_ranges, label="Range indexes",
               help="search mode: property:type pairs with a range index (depth:double)"),
        Option("id_field", str, default="", label="Id field",
               help="an integer column/property unique per feature: the object id"),
        Option("filtered", bool, default=True, label="Filtered search",
               help="search mode: filtered searches (exact; unfiltered trusts the indexes)"),
        Option("page_size", int, default=500, check=_between(1, 5000), label="Page size",
               help="search mode: documents per request"),
        Option("max_records", int, default=10000, check=_between(1, 1_000_000),
               label="Most records read", help="rows or documents read for one answer when "
                                               "MarkLogic cannot filter or page it itself"),
    )

    # --- entry --------------------------------------------------------------------------------

    def get_data(self, request: ProviderRequest) -> dict[str, Any]:
        settings = connection(self.name, request.host)
        server = Server.of(settings)
        options = self._layer_options(request, settings)
        client = Client(server)
        if options["mode"] == "search":
            return SearchLayer(client, options, request).answer()
        return RowsLayer(client, options, request).answer()

    def _layer_options(self, request: ProviderRequest, settings: Mapping[str, Any]
                       ) -> dict[str, Any]:
        """The dataset's options over the connection's own description of the layer."""
        configured = settings.get("layers") or {}
        layer = configured.get(request.id or "") if isinstance(configured, Mapping) else None
        if not layer:
            return dict(request.options)
        given = dict(request.dataset.options or {}) if request.dataset is not None else {}
        try:
            return self.clean_options({**dict(layer), **given})
        except OptionsError as exc:
            raise SourceFormatError("The MarkLogic layer is not configured right.",
                                    log_message=f"KOOP['CONNECTIONS']['marklogic'] layer "
                                                f"{request.id!r}: {exc}") from None


class _Layer:
    """What both modes share: options, the checked query, features from records."""

    def __init__(self, client: Client, options: dict[str, Any], request: ProviderRequest
                 ) -> None:
        self.client, self.options, self.request = client, options, request
        dataset = request.dataset
        self.case_sensitive = bool(getattr(dataset, "case_sensitive_strings", False))
        self.method = request.params.get("method")
        self.key = (client.server.url, client.server.database, request.id,
                    tuple(sorted((k, repr(v)) for k, v in options.items())))

    @property
    def points(self) -> bool:
        return bool(self.options["latitude"] and self.options["longitude"])

    def info(self) -> LayerInfo:
        now = time.monotonic()
        with _layers_lock:
            kept = _layers.get(self.key)
        if kept is not None and kept[0] > now:
            return kept[1]
        found = self.read_info()
        with _layers_lock:
            if len(_layers) > 256:
                _layers.clear()
            _layers[self.key] = (now + SCHEMA_SECONDS, found)
        return found

    def read_info(self) -> LayerInfo:
        raise NotImplementedError

    def parsed(self, info: LayerInfo) -> Query:
        """Every parameter checked against the layer's fields: the engine's own 400s."""
        return parse_query(self.request.query, info.schema, case_sensitive=self.case_sensitive)

    def envelope(self, query: Query) -> tuple[float, float, float, float] | None:
        spatial = query.spatial
        if spatial is None or not spatial.is_box or spatial.relation not in ENVELOPE_RELATIONS:
            return None
        return spatial.bbox

    def metadata(self, info: LayerInfo, **extra: Any) -> dict[str, Any]:
        fields = [{"name": f.name, "type": f.type, "alias": f.alias or f.name}
                  for f in info.schema.fields if f.name != "OBJECTID" or self.options["id_field"]]
        metadata: dict[str, Any] = {"name": self.request.id or "", "fields": fields, **extra}
        if self.options["id_field"]:
            metadata["idField"] = info.schema.object_id_field
        if self.points:
            metadata["geometryType"] = "Point"
        return metadata

    def geometry_of(self, record: Mapping[str, Any]) -> dict[str, Any] | None:
        if self.points:
            lat = _path(record, self.options["latitude"])
            lon = _path(record, self.options["longitude"])
            if _is_number(lat) and _is_number(lon):
                return {"type": "Point", "coordinates": [float(lon), float(lat)]}
            return None
        name = self.options["geometry"]
        if not name:
            return None
        value = _path(record, name)
        if isinstance(value, str):
            match = _POINT_TEXT.match(value)
            if match:  # MarkLogic's point text: "lat,lon"
                return {"type": "Point", "coordinates": [float(match[2]), float(match[1])]}
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                return None
        return value if isinstance(value, dict) and "type" in value else None


class RowsLayer(_Layer):
    """A TDE view through ``POST /v1/rows`` with a serialized Optic plan."""

    @property
    def view(self) -> tuple[str, str]:
        text = self.options["view"] or self.request.id or ""
        schema, dot, view = text.partition(".")
        if not dot or not schema or not view:
            raise InvalidParameterError("id", "a MarkLogic rows layer is schema.view")
        return schema, view

    def from_view(self) -> dict[str, Any]:
        schema, view = self.view
        return op("from-view", schema, view, None, None)

    def rows(self, *operators: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """Run fromView + ``operators``: the rows (names unqualified) and the column types."""
        body = orjson.dumps(plan(self.from_view(), *operators))
        answer = self.client.call("POST", "/v1/rows", [("column-types", "header")], body)
        if not isinstance(answer, dict) or not isinstance(answer.get("rows", []), list):
            raise SourceFormatError("MarkLogic answered /v1/rows without rows.")
        columns = answer.get("columns") or []
        schema, view = self.view
        types: dict[str, str] = {}
        names: dict[str, str] = {}
        for column in columns:
            if isinstance(column, dict) and column.get("name"):
                full = str(column["name"])
                short = _unqualified(full, schema, view)
                names[full] = short
                types[short] = str(column.get("type") or "")
        out = []
        for row in answer.get("rows") or []:
            if not isinstance(row, dict):
                raise SourceFormatError("MarkLogic answered a row that is not an object.")
            record = {}
            for key, value in row.items():
                short = names.get(key) or _unqualified(key, schema, view)
                if isinstance(value, dict) and "value" in value and "type" in value:
                    types.setdefault(short, str(value["type"]))
                    value = value["value"]  # column-types=rows: {"type", "value"} per cell
                record[short] = value
            out.append(record)
        return out, types

    def read_info(self) -> LayerInfo:
        rows, types = self.rows(op("offset-limit", 0, 1))
        if not types:
            raise SourceFormatError("MarkLogic's view has no columns.")
        fields = [Field(name, _esri_type(kind), name) for name, kind in types.items()
                  if name != self.options["geometry"]]
        id_field = self.options["id_field"]
        object_id = "OBJECTID"
        if id_field:
            found = next((f for f in fields if f.name.lower() == id_field.lower()), None)
            if found is None:
                raise SourceFormatError(f"The view has no column {id_field!r} (id_field).")
            object_id = found.name
            fields = [Field(f.name, INTEGER, f.alias) if f is found else f for f in fields]
        else:
            fields.insert(0, Field("OBJECTID", OID, "OBJECTID"))  # assigned by the engine
        schema = LayerSchema(tuple(fields), object_id, "esriGeometryPoint" if self.points
                             else None, None)
        return LayerInfo(schema, types, "")

    def answer(self) -> dict[str, Any]:
        info = self.info()
        if self.method in DESCRIBE_METHODS:
            return self.describe(info)
        query = self.parsed(info)
        conditions: list[dict[str, Any]] = []
        applied: dict[str, bool] = {"where": True}
        tree = checked_tree(self.request.query.get("where"), info.schema,
                            case_sensitive=self.case_sensitive)
        if tree is not None:
            self._check_columns(tree, info)
            conditions.append(OpticWhere(info.schema, case_sensitive=self.case_sensitive,
                                         column_types=info.column_types).emit(tree))
        complete = query.time is None
        if query.spatial is not None:
            box = self.envelope(query) if self.points and self._numeric_coordinates(info) \
                else None
            if box is not None:
                conditions.append(self._box(box))
                applied["geometry"] = True
            else:
                complete = False
        if query.object_ids is not None:
            if self.options["id_field"]:
                ids = list(query.object_ids)
                conditions.append(op("or", *(op("eq", col(info.schema.object_id_field), i)
                                             for i in ids)) if ids else op("eq", 1, 0))
                applied["objectIds"] = True
            else:
                complete = False
        where = [op("where", op("and", *conditions) if len(conditions) > 1 else conditions[0])
                 ] if conditions else []
        metadata = self.metadata(info)
        if complete and not query.distinct:
            if query.statistics:
                statistics = self._statistics(query, info, where)
                if statistics is not None:
                    return self._answer([], metadata, applied, statistics=statistics)
            elif query.count_only and not query.extent_only:
                rows, _ = self.rows(*where, op("group-by", None, [op("count", col("count"))]))
                count = int(rows[0].get("count") or 0) if rows else 0  # no group: no rows
                return self._answer([], metadata, applied, count=count)
            elif query.extent_only and self.points and self._numeric_coordinates(info):
                count, extent = self._extent(where)
                if extent is not None:
                    return self._answer([], metadata, applied, count=count, extent=extent)
                return self._answer([], metadata, applied, count=count)
            elif (not query.ids_only and not query.count_only and not query.extent_only
                  and self._orderable(query, info)):
                return self._page(query, info, where, metadata, applied)
        rows, _ = self.rows(*where, op("offset-limit", 0, self.options["max_records"] + 1))
        exceeded = len(rows) > self.options["max_records"]
        metadata["limitExceeded"] = exceeded
        return self._answer(rows[:self.options["max_records"]], metadata, applied)

    def describe(self, info: LayerInfo) -> dict[str, Any]:
        """Service and layer info, not the data: the rows at the edges of the layer's extent
        (the extent of the info is that of the rows given), else one row."""
        extent = None
        if self.points and self._numeric_coordinates(info):
            _, extent = self._extent([])
        if extent is None:
            rows, _ = self.rows(op("offset-limit", 0, 1))
            return self._answer(rows, self.metadata(info), {})
        lat, lon = col(self.options["latitude"]), col(self.options["longitude"])
        xmin, ymin, xmax, ymax = extent
        edges = op("or", op("eq", lon, xmin), op("eq", lon, xmax), op("eq", lat, ymin),
                   op("eq", lat, ymax))
        rows, _ = self.rows(op("where", edges), op("offset-limit", 0, 8))
        return self._answer(rows, self.metadata(info, extent=extent), {})

    def _answer(self, rows: list[dict[str, Any]], metadata: dict[str, Any],
                applied: dict[str, bool], **answers: Any) -> dict[str, Any]:
        info = self.info()
        dates = {f.name for f in info.schema.fields if f.type == DATE}
        features = [self._feature(row, dates) for row in rows]
        out = {"type": "FeatureCollection", "features": features, "metadata": metadata,
               "filtersApplied": applied}
        out.update({k: v for k, v in answers.items() if v is not None})
        return out

    def _feature(self, row: dict[str, Any], dates: set[str]) -> dict[str, Any]:
        geometry = self.geometry_of(row)
        properties = {}
        for key, value in row.items():
            if key == self.options["geometry"]:
                continue
            if key in dates and isinstance(value, str):
                value = parse_date_ms(value)
            properties[key] = value
        return {"type": "Feature", "properties": properties, "geometry": geometry}

    def _check_columns(self, tree: exp.Expression, info: LayerInfo) -> None:
        for column in tree.find_all(exp.Column):
            found = info.schema.field(column.name)
            if found is not None and found.name not in info.column_types:
                raise InvalidParameterError(
                    "where", f"{found.name} is assigned here, not a column of the view: set "
                             "the layer's id_field to filter on object ids")

    def _numeric_coordinates(self, info: LayerInfo) -> bool:
        kinds = {info.schema.field(self.options[k]).type if info.schema.field(self.options[k])
                 else None for k in ("latitude", "longitude")}
        return kinds <= {INTEGER, DOUBLE, SMALL_INTEGER}

    def _box(self, box: tuple[float, float, float, float]) -> dict[str, Any]:
        xmin, ymin, xmax, ymax = box
        lat, lon = col(self.options["latitude"]), col(self.options["longitude"])
        return op("and", op("ge", lon, xmin), op("le", lon, xmax), op("ge", lat, ymin),
                  op("le", lat, ymax))

    def _extent(self, where: list[dict[str, Any]]
                ) -> tuple[int, list[float] | None]:
        lat, lon = col(self.options["latitude"]), col(self.options["longitude"])
        aggregates = [op("min", col("xmin"), lon), op("min", col("ymin"), lat),
                      op("max", col("xmax"), lon), op("max", col("ymax"), lat),
                      op("count", col("count"))]
        rows, _ = self.rows(*where, op("group-by", None, aggregates))
        row = rows[0] if rows else {}
        values = [row.get(k) for k in ("xmin", "ymin", "xmax", "ymax")]
        count = int(row.get("count") or 0)
        if not all(_is_number(v) for v in values):
            return count, None
        return count, [float(v) for v in values]  # type: ignore[arg-type]

    def _orderable(self, query: Query, info: LayerInfo) -> bool:
        """Paging is sent only under a total order the engine keeps too: the fields asked
        for, then the id column (without one, the engine's assigned ids order the rows)."""
        return bool(self.options["id_field"]) and all(
            name in info.column_types for name, _ in query.order_by)

    def _page(self, query: Query, info: LayerInfo, where: list[dict[str, Any]],
              metadata: dict[str, Any], applied: dict[str, bool]) -> dict[str, Any]:
        keys = [op("desc" if descending else "asc", col(name))
                for name, descending in query.order_by]
        keys.append(op("asc", col(info.schema.object_id_field)))
        limit = min(query.limit or self.options["max_records"], self.options["max_records"])
        rows, _ = self.rows(*where, op("order-by", keys),
                            op("offset-limit", query.offset, limit + 1))
        metadata["limitExceeded"] = len(rows) > limit
        return self._answer(rows[:limit], metadata, {**applied, "offset": True, "limit": True})

    def _statistics(self, query: Query, info: LayerInfo, where: list[dict[str, Any]]
                    ) -> list[dict[str, Any]] | None:
        if query.having is not None or query.offset or any(
                s.kind not in PUSHED_STATISTICS for s in query.statistics) or any(
                s.field != "*" and s.field not in info.column_types for s in query.statistics):
            return None
        if any(name not in info.column_types for name in query.group_by):
            return None
        aggregates = []
        for stat in query.statistics:
            arguments: list[Any] = [col(stat.out_name)]
            if stat.field != "*":
                arguments.append(col(stat.field))
            aggregates.append(op(stat.kind, *arguments))
        keys = [col(name) for name in query.group_by] or None
        order = [op("desc" if d else "asc", col(name)) for name, d in query.order_by]
        order += [op("asc", col(name)) for name in query.group_by]
        operators = [*where, op("group-by", keys, aggregates)]
        if order:
            operators.append(op("order-by", order))
        rows, _ = self.rows(*operators)
        kinds = {f.name: f.type for f in info.schema.fields}
        out = []
        for row in rows:
            record: dict[str, Any] = {name: self._plain(row.get(name), kinds.get(name))
                                      for name in query.group_by}
            for stat in query.statistics:
                record[stat.out_name] = _statistic(stat.kind, row.get(stat.out_name),
                                                   kinds.get(stat.field))
            out.append(record)
        return out

    @staticmethod
    def _plain(value: Any, kind: str | None) -> Any:
        if kind == DATE and isinstance(value, str):
            return parse_date_ms(value)
        return value


def _statistic(kind: str, value: Any, field_type: str | None) -> Any:
    """An Optic aggregate as the engine writes it: counts and integer sums whole, averages
    doubles, dates in epoch milliseconds."""
    if value is None:
        return None
    if field_type == DATE and isinstance(value, str):
        return parse_date_ms(value)
    if isinstance(value, str):
        try:
            value = float(value)  # xs:decimal as text
        except ValueError:
            return value
    if kind == "count":
        return int(value)
    if kind == "avg":
        return float(value)
    if kind == "sum" and field_type in (INTEGER, SMALL_INTEGER):
        return int(round(value))
    if kind == "sum":
        return float(value)
    return value


class SearchLayer(_Layer):
    """JSON documents through ``POST /v1/search`` with a combined query."""

    def search(self, queries: list[dict[str, Any]], start: int, length: int, *,
               sort: dict[str, Any] | None = None) -> dict[str, Any]:
        options: dict[str, Any] = {"transform-results": {"apply": "raw"},
                                   "search-option": ["filtered" if self.options["filtered"]
                                                     else "unfiltered"]}
        if sort is not None:
            options["sort-order"] = [sort]
        fixed = self.options["structured_query"]
        if fixed:
            extra = orjson.loads(fixed)
            inner = extra.get("query", extra)
            queries = [*queries, *(inner.get("queries") if "queries" in inner else [inner])]
        search: dict[str, Any] = {"query": {"queries": queries}, "options": options}
        if self.options["string_query"]:
            search["qtext"] = self.options["string_query"]
        params = [("format", "json"), ("view", "results"), ("start", str(start)),
                  ("pageLength", str(length))]
        for uri in self.collections():
            params.append(("collection", uri))
        if self.options["directory"]:
            params.append(("directory", self.options["directory"]))
        if self.options["search_options"]:
            params.append(("options", self.options["search_options"]))
        answer = self.client.call("POST", "/v1/search", params, orjson.dumps({"search": search}))
        if not isinstance(answer, dict) or not isinstance(answer.get("results", []), list) \
                or not _is_number(answer.get("total", 0)):
            raise SourceFormatError("MarkLogic answered /v1/search without results and total.")
        return answer

    def collections(self) -> list[str]:
        if self.options["collection"]:
            return list(self.options["collection"])
        return [] if self.options["directory"] else [self.request.id or ""]

    def records(self, answer: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for result in answer.get("results") or []:
            content = result.get("content") if isinstance(result, dict) else None
            if isinstance(content, str):
                try:
                    content = orjson.loads(content)
                except orjson.JSONDecodeError:
                    content = None
            if not isinstance(content, dict):
                raise SourceFormatError("A MarkLogic search result holds no JSON document.")
            out.append((str(result.get("uri") or ""), content))
        return out

    def read_info(self) -> LayerInfo:
        sample = self.records(self.search([], 1, min(50, self.options["page_size"])))
        names: dict[str, list[Any]] = {}
        for _, document in sample:
            for key, value in self._properties(document).items():
                names.setdefault(key, []).append(value)
        fields = [Field(name, infer_type(values)[0], name) for name, values in names.items()]
        id_field = self.options["id_field"]
        object_id = next((f.name for f in fields if f.name.lower() == id_field.lower()),
                         "") if id_field else ""
        if not object_id:
            object_id = "OBJECTID"
            fields.insert(0, Field("OBJECTID", OID, "OBJECTID"))
        return LayerInfo(LayerSchema(tuple(fields), object_id,
                                     "esriGeometryPoint" if self.points else None, None), {}, "")

    def _properties(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """Top-level values that are not objects or arrays (those are not columns)."""
        return {k: v for k, v in document.items()
                if not isinstance(v, (dict, list)) and k != self.options["geometry"]}

    def answer(self) -> dict[str, Any]:
        info = self.info()
        metadata = self.metadata(info)
        query = self.parsed(info)
        tree = checked_tree(self.request.query.get("where"), info.schema,
                            case_sensitive=self.case_sensitive)
        ranges = {}
        for item in self.options["range_indexes"]:
            name, _, kind = item.partition(":")
            ranges[name] = kind.removeprefix("xs:")
        queries, whole = SearchWhere(info.schema, case_sensitive=self.case_sensitive,
                                     range_indexes=ranges).emit(tree)
        if tree is not None and any(f.name == "OBJECTID" for f in info.schema.fields):
            if any(c.name.lower() == "objectid" for c in tree.find_all(exp.Column)):
                queries, whole = [], False  # assigned ids: only the engine knows them
        # "where": False says so explicitly: the engine reads metadata.limitExceeded only
        # from an answer that reports filtersApplied (koop_app.data.normalize.SourceAnswers).
        applied: dict[str, bool] = {"where": whole}
        complete = whole and query.time is None and query.object_ids is None
        if query.spatial is not None:
            box = self.envelope(query)
            geo = geo_box_query(self.options, box) if box is not None and self.points else None
            if geo is not None:
                queries.append(geo)
                applied["geometry"] = True
            else:
                complete = False
        if complete and query.count_only and not query.extent_only and not query.distinct:
            total = self.search(queries, 1, 1).get("total")
            return self._answer([], metadata, applied, count=int(total or 0))
        id_field = self.options["id_field"]
        sort_type = ranges.get(id_field) if id_field else None
        if (complete and sort_type and not query.order_by and not query.statistics
                and not query.ids_only and not query.count_only and not query.extent_only
                and not query.distinct and (query.offset or query.limit)):
            limit = query.limit or self.options["max_records"]
            sort = {"direction": "ascending", "json-property": id_field,
                    "type": f"xs:{sort_type}"}
            records: list[tuple[str, dict[str, Any]]] = []
            total = 0
            while len(records) < limit:
                size = min(self.options["page_size"], limit - len(records))
                page = self.search(queries, query.offset + len(records) + 1, size, sort=sort)
                found = self.records(page)
                records.extend(found)
                total = int(page.get("total") or 0)
                if len(found) < size:
                    break
            metadata["limitExceeded"] = total > query.offset + len(records)
            return self._answer(records, metadata, {**applied, "offset": True, "limit": True})
        records = []
        most = self.options["max_records"]
        total = 0
        while len(records) < most:
            size = min(self.options["page_size"], most - len(records))
            page = self.search(queries, len(records) + 1, size)
            found = self.records(page)
            records.extend(found)
            total = int(page.get("total") or 0)
            if len(found) < size or len(records) >= total:
                break
        metadata["limitExceeded"] = total > len(records)
        return self._answer(records, metadata, applied)

    def _answer(self, records: list[tuple[str, dict[str, Any]]], metadata: dict[str, Any],
                applied: dict[str, bool], **answers: Any) -> dict[str, Any]:
        features = [{"type": "Feature", "id": uri, "properties": self._properties(document),
                     "geometry": self.geometry_of(document)} for uri, document in records]
        out = {"type": "FeatureCollection", "features": features, "metadata": metadata,
               "filtersApplied": applied}
        out.update({k: v for k, v in answers.items() if v is not None})
        return out


def _path(record: Mapping[str, Any], path: str) -> Any:
    """``a.b`` in a document (a column name with no dot is itself)."""
    if path in record:
        return record[path]
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
        value)


def _unqualified(name: str, schema: str, view: str) -> str:
    for prefix in (f"{schema}.{view}.", f"{view}."):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name
