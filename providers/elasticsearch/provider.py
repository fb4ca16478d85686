"""Elasticsearch / OpenSearch indices as FeatureServer layers, passed through.

``/elasticsearch/rest/services/<cluster>/<index>/FeatureServer/0/query``: ``<cluster>`` is a
connection of ``KOOP["CONNECTIONS"]["elasticsearch"]`` (client.py), ``<index>`` an index,
alias or pattern it allows. Every query becomes one search where it can (two when paging
past the result window), and the answer says in ``filtersApplied`` what the index did:

    where, geometry, objectIds, time      -> the search's ``query`` (dsl.py)
    orderByFields, resultOffset/Count      -> ``sort``, ``from``/``size``; ``search_after``
                                              past ``max_result_window``
    returnCountOnly                        -> ``_count``
    returnExtentOnly                       -> a ``geo_bounds`` aggregation
    outStatistics (+ groupBy)              -> metric aggregations (+ ``composite``)
    returnDistinctValues                   -> a ``composite`` aggregation
    outFields, returnGeometry=false        -> ``_source`` includes

What one search cannot answer (percentiles, min/max of text, havingClause, ids of every
match) reads every matching document, at most ``max_features``, and lets the engine finish.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from koop_app.data.arrowio import read_ipc
from koop_app.data.schema import DATE, DOUBLE, INTEGER, SMALL_INTEGER, STRING
from koop_app.errors import InvalidParameterError, NotFoundError
from koop_app.options import Option
from koop_app.provider import Provider, ProviderRequest
from koop_app.query import Query, RecordLimits, parse_query
from koop_app.query.where import checked_tree

from . import dsl
from .client import Cluster
from .schema import GEO_TYPES, IndexLayer, feature_of, index_layer, point_of, shape_of

MAPPING_SECONDS = 30.0  # an index's mapping is read at most this often per process
GEOMETRY_TYPES = {"point": "esriGeometryPoint", "multipoint": "esriGeometryMultipoint",
                  "linestring": "esriGeometryPolyline",
                  "multilinestring": "esriGeometryPolyline",
                  "polygon": "esriGeometryPolygon", "multipolygon": "esriGeometryPolygon",
                  "envelope": "esriGeometryPolygon"}
STATISTIC_AGGS = {"count", "sum", "min", "max", "avg", "stddev", "var"}


def _positive(value: int) -> int:
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _geometry_type(value: str) -> str:
    found = GEOMETRY_TYPES.get(value.strip().lower().removeprefix("esrigeometry"))
    if found is None and value.strip().lower().removeprefix("esrigeometry") == "polyline":
        found = "esriGeometryPolyline"
    if found is None:
        raise ValueError("must be Point, Multipoint, Polyline or Polygon")
    return found


@dataclass
class _Ask:
    """One question to the index: the request's parts the provider reads."""

    cluster: Cluster
    index: str
    layer: IndexLayer
    options: Mapping[str, Any]
    oid: str  # the layer's object id field


class ElasticsearchProvider(Provider):
    """Elasticsearch or OpenSearch indices, searched on every request."""

    name = "elasticsearch"
    title = "Elasticsearch / OpenSearch index"
    description = ("An index (alias or pattern) of a configured Elasticsearch or OpenSearch "
                   "cluster, searched on every request: filters, paging, counts and "
                   "statistics run in the cluster.")
    version = "1.0.0"
    hosts = True
    connection_hosts = True  # the host names a cluster of KOOP["CONNECTIONS"]["elasticsearch"]
    cache_policy = "pass-through"
    options_schema = (
        Option("geometry_field", str, label="Geometry field",
               help="a geo_point or geo_shape field; the first one of the mapping when empty"),
        Option("geometry_type", str, check=_geometry_type, label="Geometry type",
               help="for geo_shape fields: Point, Multipoint, Polyline or Polygon (read from "
                    "a document when empty)"),
        Option("id_field", str, label="Object id field",
               help="an integer field with unique positive values, served as OBJECTID; "
                    "without it object ids are assigned per document _id and kept"),
        Option("time_field", str, label="Time field",
               help="a date field: the layer's time, filtered by the time parameter"),
        Option("tiebreaker_field", str, label="Tiebreaker field",
               help="a unique keyword or number field to page past max_result_window when "
                    "there is no id field"),
        Option("max_result_window", int, default=10_000, check=_positive,
               label="Result window", help="the index's index.max_result_window"),
        Option("max_features", int, default=100_000, check=_positive,
               label="Most documents per answer",
               help="documents read for one answer that needs every match (deep pages, ids, "
                    "statistics the cluster cannot compute)"),
    )

    def get_data(self, request: ProviderRequest) -> dict[str, Any]:
        cluster = Cluster.named(request.host)
        index = cluster.check_index(request.id or "")
        layer = _layer(cluster, index, request.options)
        ask = _Ask(cluster, index, layer, request.options, layer.id_field or "OBJECTID")
        method = request.params.get("method")
        if method == "query":
            return self._query(ask, request, dict(request.query))
        if method == "feature":
            object_id = _route_object_id(request)
            return self._query(ask, request, {"objectIds": object_id, "outFields": "*"})
        return self._info(ask)

    # --- layer info ---------------------------------------------------------------------------
    def _info(self, ask: _Ask) -> dict[str, Any]:
        """Fields, geometry type and extent: one size-0 search (one document for shapes)."""
        layer = ask.layer
        body: dict[str, Any] = {"size": 0, "track_total_hits": False}
        if layer.geometry_field:
            body["aggs"] = {"extent": {"geo_bounds": {"field": layer.geometry_field}}}
            if layer.geometry_kind != "geo_point" and not ask.options.get("geometry_type"):
                body.update(size=1, _source=[layer.geometry_field])
        answer = ask.cluster.call("POST", ask.index, "_search", body)
        collection = _collection([], ask, answer_geometry_type(ask, answer))
        extent = _bounds((answer.get("aggregations") or {}).get("extent"))
        if extent is not None:
            collection["metadata"]["extent"] = extent
        return collection

    # --- queries ------------------------------------------------------------------------------
    def _query(self, ask: _Ask, request: ProviderRequest, raw: dict[str, str]
               ) -> dict[str, Any]:
        layer = ask.layer
        schema = layer.layer_schema()
        case_sensitive = bool(getattr(request.dataset, "case_sensitive_strings", False))
        parsed = parse_query(raw, schema, case_sensitive=case_sensitive)
        geometry_type = answer_geometry_type(ask, None)
        filters = self._filters(ask, request, raw, parsed, case_sensitive)
        applied = {"where": True, "geometry": True, "objectIds": True,
                   "time": bool(layer.time_field)}
        query_dsl = dsl.MATCH_ALL if not filters else (
            filters[0] if len(filters) == 1 else {"bool": {"filter": filters}})

        if parsed.count_only or parsed.extent_only:
            return self._count_extent(ask, parsed, query_dsl, applied, geometry_type)
        if parsed.statistics:
            answer = self._statistics(ask, parsed, query_dsl, applied, geometry_type)
            if answer is not None:
                return answer
            return self._everything(ask, parsed, query_dsl, applied, geometry_type)
        if parsed.distinct:
            return self._distinct(ask, parsed, query_dsl, applied, geometry_type)
        if parsed.ids_only:
            return self._everything(ask, parsed, query_dsl, applied, geometry_type)
        return self._page(ask, request, parsed, query_dsl, applied, geometry_type)

    def _filters(self, ask: _Ask, request: ProviderRequest, raw: dict[str, str],
                 parsed: Query, case_sensitive: bool) -> list[dict[str, Any]]:
        layer = ask.layer
        filters: list[dict[str, Any]] = []
        tree = checked_tree(raw.get("where"), layer.layer_schema(),
                            case_sensitive=case_sensitive)
        if tree is not None:
            emitter = dsl.WhereEmitter(layer, case_sensitive=case_sensitive, id_field=ask.oid)
            filters.append(emitter.emit(tree))
        if parsed.spatial is not None:
            filters.append(dsl.spatial_query(parsed.spatial, layer, raw))
        if parsed.object_ids is not None:
            filters.append(self._object_ids(ask, request, parsed.object_ids))
        if parsed.time is not None and layer.time_field:
            low, high = parsed.time
            bounds: dict[str, Any] = {"format": "epoch_millis"}
            if low is not None:
                bounds["gte"] = low
            if high is not None:
                bounds["lte"] = high
            filters.append({"range": {layer.time_field: bounds}})
        return filters

    def _object_ids(self, ask: _Ask, request: ProviderRequest, oids: tuple[int, ...]
                    ) -> dict[str, Any]:
        if ask.layer.id_field:
            return {"terms": {ask.layer.id_field: list(oids)}}
        # Assigned ids: the documents' _id the ids map holds for them (koop_app.data.ids).
        return {"ids": {"values": document_ids(self.create_key(request), oids)}}

    def _count_extent(self, ask: _Ask, parsed: Query, query_dsl: dict[str, Any],
                      applied: dict[str, bool], geometry_type: str | None) -> dict[str, Any]:
        collection = _collection([], ask, geometry_type, applied)
        if parsed.count_only and not parsed.extent_only:
            answer = ask.cluster.call("POST", ask.index, "_count", {"query": query_dsl})
            collection["count"] = int(answer.get("count") or 0)
            return collection
        body: dict[str, Any] = {"size": 0, "track_total_hits": True, "query": query_dsl}
        if ask.layer.geometry_field:
            body["aggs"] = {"extent": {"geo_bounds": {"field": ask.layer.geometry_field}}}
        answer = ask.cluster.call("POST", ask.index, "_search", body)
        collection["count"] = _total(answer)
        extent = _bounds((answer.get("aggregations") or {}).get("extent"))
        # No match: an extent of nothing (the engine answers it as ArcGIS does: NaN/null).
        collection["extent"] = extent or [float("nan")] * 4
        return collection

    # --- a page of features -------------------------------------------------------------------
    def _sort(self, ask: _Ask, parsed: Query, *, unique: bool) -> list[Any]:
        keys = dsl.sort_keys(parsed.order_by, ask.layer)
        tiebreaker = ask.layer.id_field or ask.options.get("tiebreaker_field")
        if tiebreaker:
            found = ask.layer.field(tiebreaker)
            if found is None or found.keyword is None:
                raise NotFoundError("The tiebreaker field is not a field of the index.")
            keys.append({found.keyword: {"order": "asc"}})
        elif unique:
            raise InvalidParameterError(
                "resultOffset", f"paging past {ask.options['max_result_window']} documents "
                "needs the dataset's id_field or tiebreaker_field option")
        else:
            keys.append("_doc")  # the index order: stable between requests
        return keys

    def _includes(self, ask: _Ask, parsed: Query, geometry: bool) -> list[str]:
        layer = ask.layer
        if parsed.out_fields is None:
            names = list(layer.order)
        else:
            names = [n for n in parsed.out_fields if layer.field(n) is not None]
            names += [n for n, _ in parsed.order_by]
            if layer.id_field:
                names.append(layer.id_field)
            if layer.time_field:
                names.append(layer.time_field)
        out = list(dict.fromkeys(layer.field(n).name for n in names if layer.field(n)))
        if geometry and layer.geometry_field:
            out.append(layer.geometry_field)
        return out

    def _page(self, ask: _Ask, request: ProviderRequest, parsed: Query,
              query_dsl: dict[str, Any], applied: dict[str, bool],
              geometry_type: str | None) -> dict[str, Any]:
        dataset = request.dataset
        limits = RecordLimits.for_layer(
            int(dataset.effective_max_record_count) if dataset is not None else 2000,
            geometry_type)
        cap = limits.for_query(parsed)
        if parsed.limit is not None and parsed.limit < 1:
            raise InvalidParameterError("resultRecordCount", "must be at least 1")
        size = min(parsed.limit or cap, cap)
        start = int(parsed.offset)
        window = int(ask.options["max_result_window"])
        geometry = parsed.return_geometry
        body: dict[str, Any] = {"query": query_dsl, "track_total_hits": False,
                                "_source": self._includes(ask, parsed, geometry)}
        if start + size + 1 <= window:
            body.update({"from": start, "size": size + 1,
                         "sort": self._sort(ask, parsed, unique=False)})
            hits = _hits(ask.cluster.call("POST", ask.index, "_search", body))
        else:
            # Past the window: walk to the offset, then read the page in steps of at most
            # the window, each after the last document of the step before (search_after).
            sort = self._sort(ask, parsed, unique=True)
            after = self._walk(ask, query_dsl, sort, start)
            hits = []
            while after is not None and len(hits) < size + 1:
                step = min(size + 1 - len(hits), window)
                body.update({"size": step, "sort": sort})
                if after:
                    body["search_after"] = after
                got = _hits(ask.cluster.call("POST", ask.index, "_search", body))
                hits.extend(got)
                after = (got[-1].get("sort") or None) if len(got) == step else None
        exceeded = len(hits) > size
        features = [feature_of(hit, ask.layer, geometry) for hit in hits[:size]]
        collection = _collection(features, ask, geometry_type,
                                 {**applied, "offset": True, "limit": True})
        collection["metadata"]["limitExceeded"] = exceeded
        return collection

    def _walk(self, ask: _Ask, query_dsl: dict[str, Any], sort: list[Any], skip: int
              ) -> list[Any] | None:
        """The sort values of the ``skip``-th document (search_after), [] for none to skip,
        None when fewer match; steps of at most the result window, reading no _source."""
        if skip > int(ask.options["max_features"]):
            raise InvalidParameterError("resultOffset", f"at most {ask.options['max_features']} "
                                        "documents are skipped on this index")
        window = int(ask.options["max_result_window"])
        after: list[Any] = []
        while skip > 0:
            step = min(skip, window)
            body: dict[str, Any] = {"query": query_dsl, "size": step, "sort": sort,
                                    "_source": False, "track_total_hits": False}
            if after:
                body["search_after"] = after
            hits = _hits(ask.cluster.call("POST", ask.index, "_search", body))
            if len(hits) < step:
                return None
            after = hits[-1].get("sort") or []
            skip -= step
        return after

    def _everything(self, ask: _Ask, parsed: Query, query_dsl: dict[str, Any],
                    applied: dict[str, bool], geometry_type: str | None) -> dict[str, Any]:
        """Every matching document (at most max_features): the engine does the rest."""
        limit = int(ask.options["max_features"])
        window = int(ask.options["max_result_window"])
        geometry = parsed.return_geometry and not parsed.ids_only and not parsed.statistics
        if parsed.ids_only or parsed.statistics:
            includes = self._includes(ask, Query(out_fields=tuple(
                [s.field for s in parsed.statistics if s.field != "*"] + list(parsed.group_by)
            ), order_by=parsed.order_by), False)
        else:
            includes = self._includes(ask, parsed, geometry)
        tiebreaker = ask.layer.id_field or ask.options.get("tiebreaker_field")
        sort = self._sort(ask, Query(), unique=False) if tiebreaker else ["_doc"]
        features: list[dict[str, Any]] = []
        after: list[Any] = []
        while True:
            step = min(window, limit + 1 - len(features))
            body: dict[str, Any] = {"query": query_dsl, "size": step, "sort": sort,
                                    "_source": includes, "track_total_hits": False}
            if after:
                body["search_after"] = after
            elif not tiebreaker:
                body["size"] = min(window, limit + 1)  # one request: _doc cannot page
            hits = _hits(ask.cluster.call("POST", ask.index, "_search", body))
            features.extend(feature_of(hit, ask.layer, geometry) for hit in hits)
            if len(features) > limit or (not tiebreaker and len(hits) >= body["size"]):
                raise InvalidParameterError(
                    "where", f"more than {min(limit, window) if not tiebreaker else limit} "
                    "documents match and this answer needs them all: narrow the query")
            if len(hits) < step or not tiebreaker:
                break
            after = hits[-1].get("sort") or []
        return _collection(features, ask, geometry_type, applied)

    # --- distinct values and statistics ---------------------------------------------------
    def _composite(self, ask: _Ask, query_dsl: dict[str, Any], names: tuple[str, ...],
                   metrics: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Every bucket of a composite aggregation over ``names`` (at most max_features)."""
        sources = []
        for name in names:
            found = ask.layer.field(name)
            if found is None or found.keyword is None:
                raise InvalidParameterError("groupByFieldsForStatistics",
                                            f"{name!r} cannot be grouped on (analysed text)")
            sources.append({found.name: {"terms": {"field": found.keyword,
                                                   "missing_bucket": True}}})
        limit = int(ask.options["max_features"])
        buckets: list[tuple[dict[str, Any], dict[str, Any]]] = []
        after = None
        while True:
            composite: dict[str, Any] = {"size": 1000, "sources": sources}
            if after:
                composite["after"] = after
            aggs: dict[str, Any] = {"groups": {"composite": composite}}
            if metrics:
                aggs["groups"]["aggs"] = metrics
            answer = ask.cluster.call("POST", ask.index, "_search",
                                      {"size": 0, "query": query_dsl, "aggs": aggs,
                                       "track_total_hits": False})
            groups = (answer.get("aggregations") or {}).get("groups") or {}
            page = groups.get("buckets") or []
            for bucket in page:
                key = {found.name: _key_value(bucket["key"].get(found.name), found)
                       for found in (ask.layer.field(n) for n in names) if found}
                buckets.append((key, bucket))
            if len(buckets) > limit:
                raise InvalidParameterError("groupByFieldsForStatistics",
                                            f"more than {limit} groups")
            after = groups.get("after_key")
            if not page or not after:
                return buckets

    def _distinct(self, ask: _Ask, parsed: Query, query_dsl: dict[str, Any],
                  applied: dict[str, bool], geometry_type: str | None) -> dict[str, Any]:
        names = tuple(ask.layer.field(n).name for n in parsed.out_fields or ()
                      if ask.layer.field(n) is not None)
        if not names:
            return self._everything(ask, parsed, query_dsl, applied, geometry_type)
        rows = self._composite(ask, query_dsl, names, {})
        features = [{"type": "Feature", "properties": key, "geometry": None}
                    for key, _ in rows]
        return _collection(features, ask, geometry_type, applied)

    def _statistics(self, ask: _Ask, parsed: Query, query_dsl: dict[str, Any],
                    applied: dict[str, bool], geometry_type: str | None
                    ) -> dict[str, Any] | None:
        """outStatistics from aggregations, or None when the cluster cannot compute them."""
        if parsed.having is not None:
            return None
        metrics: dict[str, Any] = {}
        for number, stat in enumerate(parsed.statistics):
            if stat.kind not in STATISTIC_AGGS:
                return None  # percentiles: the cluster's are approximate
            if stat.field == "*":
                continue
            found = ask.layer.field(stat.field)
            if found is None or found.keyword is None:
                return None
            if stat.kind == "count":
                metrics[f"s{number}"] = {"value_count": {"field": found.keyword}}
            elif found.esri_type == STRING:
                return None  # min/max of text: not an aggregation
            else:
                kind = "extended_stats" if stat.kind in ("stddev", "var") else "stats"
                metrics[f"s{number}"] = {kind: {"field": found.keyword}}
        if parsed.group_by:
            rows = [self._stat_row(ask, parsed, bucket, key, int(bucket.get("doc_count") or 0))
                    for key, bucket in self._composite(ask, query_dsl, parsed.group_by,
                                                       metrics)]
        else:
            body: dict[str, Any] = {"size": 0, "query": query_dsl, "track_total_hits": True}
            if metrics:
                body["aggs"] = metrics
            answer = ask.cluster.call("POST", ask.index, "_search", body)
            rows = [self._stat_row(ask, parsed, answer.get("aggregations") or {}, {},
                                   _total(answer))]
        rows = _ordered(rows, parsed)
        collection = _collection([], ask, geometry_type, applied)
        collection["statistics"] = rows
        return collection

    def _stat_row(self, ask: _Ask, parsed: Query, aggs: Mapping[str, Any],
                  key: dict[str, Any], documents: int) -> dict[str, Any]:
        row = dict(key)
        for number, stat in enumerate(parsed.statistics):
            if stat.field == "*":
                row[stat.out_name] = documents
                continue
            found = ask.layer.field(stat.field)
            values = aggs.get(f"s{number}") or {}
            if stat.kind == "count":
                row[stat.out_name] = int(values.get("value") or 0)
                continue
            count = int(values.get("count") or 0)
            value: Any = None
            if count:
                if stat.kind in ("sum", "min", "max", "avg"):
                    value = values.get(stat.kind)
                elif count > 1:
                    total, squares = float(values["sum"]), float(values["sum_of_squares"])
                    variance = max(0.0, (squares - total * total / count) / (count - 1))
                    value = variance if stat.kind == "var" else variance ** 0.5
            if value is not None and found is not None and stat.kind != "avg" and (
                    found.esri_type in (INTEGER, SMALL_INTEGER, DATE)
                    or found.es_type == "long") and stat.kind in ("sum", "min", "max"):
                value = int(value) if float(value).is_integer() else value
            row[stat.out_name] = value
        return row


# --- helpers ------------------------------------------------------------------------------------

_layers: dict[tuple[str, str, str], tuple[float, IndexLayer]] = {}
_layers_lock = threading.Lock()


def _layer(cluster: Cluster, index: str, options: Mapping[str, Any]) -> IndexLayer:
    """The index's layer from its mapping, read at most every MAPPING_SECONDS."""
    key = (cluster.name, index, repr(sorted((k, str(v)) for k, v in options.items())))
    now = time.monotonic()
    with _layers_lock:
        cached = _layers.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    layer = index_layer(cluster.call("GET", index, "_mapping"), options)
    with _layers_lock:
        _layers[key] = (now + MAPPING_SECONDS, layer)
    return layer


def forget_mappings() -> None:
    """Drop the mappings read so far (tests; an index whose mapping changed)."""
    with _layers_lock:
        _layers.clear()


def answer_geometry_type(ask: _Ask, answer: Mapping[str, Any] | None) -> str | None:
    layer = ask.layer
    if layer.geometry_field is None:
        return None
    if ask.options.get("geometry_type"):
        return str(ask.options["geometry_type"])
    if layer.geometry_kind == "geo_point":
        return "esriGeometryPoint"
    if answer is not None:
        for hit in _hits(answer):
            value = (hit.get("_source") or {}).get(layer.geometry_field)
            shape = shape_of(value) if layer.geometry_kind in GEO_TYPES else point_of(value)
            if shape:
                return GEOMETRY_TYPES.get(str(shape.get("type")).lower())
    return None  # read from the page's features


def _collection(features: list[dict[str, Any]], ask: _Ask, geometry_type: str | None,
                applied: dict[str, bool] | None = None) -> dict[str, Any]:
    layer = ask.layer
    metadata: dict[str, Any] = {"name": ask.index, "fields": layer.declared_fields()}
    if layer.id_field:
        metadata["idField"] = layer.id_field
    if geometry_type:
        metadata["geometryType"] = geometry_type
    if layer.time_field:
        metadata["timeInfo"] = {"startTimeField": layer.time_field}
    out: dict[str, Any] = {"type": "FeatureCollection", "features": features,
                           "metadata": metadata}
    if applied:
        out["filtersApplied"] = {k: v for k, v in applied.items() if v}
    return out


def _hits(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    hits = (answer.get("hits") or {}).get("hits")
    return hits if isinstance(hits, list) else []


def _total(answer: Mapping[str, Any]) -> int:
    total = (answer.get("hits") or {}).get("total")
    if isinstance(total, Mapping):  # 7.x+: {"value": n, "relation": "eq"}
        return int(total.get("value") or 0)
    return int(total or 0)


def _bounds(aggregation: Any) -> list[float] | None:
    bounds = (aggregation or {}).get("bounds") if isinstance(aggregation, Mapping) else None
    if not bounds:
        return None
    top_left, bottom_right = bounds["top_left"], bounds["bottom_right"]
    return [float(top_left["lon"]), float(bottom_right["lat"]), float(bottom_right["lon"]),
            float(top_left["lat"])]


def _key_value(value: Any, found: Any) -> Any:
    if value is None:
        return None
    if found.es_type == "boolean":
        return 1 if value in (1, True, "true") else 0
    if found.esri_type in (INTEGER, SMALL_INTEGER, DATE) and isinstance(value, float):
        return int(value)
    if found.esri_type == DOUBLE and isinstance(value, int):
        return value
    return value


def _ordered(rows: list[dict[str, Any]], parsed: Query) -> list[dict[str, Any]]:
    """Statistics rows in orderByFields order (else by the groups), then paged."""
    keys = list(parsed.order_by) or [(name, False) for name in parsed.group_by]
    for name, descending in reversed(keys):
        column = next((k for k in (rows[0] if rows else {}) if k.lower() == name.lower()), None)
        if column is None:
            continue
        present = [r for r in rows if r.get(column) is not None]
        absent = [r for r in rows if r.get(column) is None]
        present.sort(key=lambda r, c=column: r[c], reverse=descending)
        rows = present + absent if descending else absent + present
    start = int(parsed.offset)
    return rows[start:start + parsed.limit] if parsed.limit else rows[start:]


def _route_object_id(request: ProviderRequest) -> str:
    match = getattr(request.http_request, "resolver_match", None)
    value = str((match.kwargs if match else {}).get("object_id") or "")
    if not value.isdigit():
        raise NotFoundError("Feature not found.")
    return value


def document_ids(cache_key: str, oids: tuple[int, ...]) -> list[str]:
    """The ``_id`` of each assigned object id in ``oids`` that the ids map knows."""
    from koop_app.models import FeatureIdChunk, FeatureIdMap

    wanted = pa.array(sorted(set(oids)), pa.int64())
    found: list[str] = []
    blobs = [bytes(b) for b in FeatureIdMap.objects.filter(cache_key=cache_key)
             .values_list("data", flat=True) if b]
    blobs += [bytes(b) for b in FeatureIdChunk.objects.filter(cache_key=cache_key)
              .order_by("pk").values_list("data", flat=True) if b]
    for blob in blobs:
        table = read_ipc(blob)
        matched = table.filter(pc.is_in(table["oid"].cast(pa.int64()), value_set=wanted))
        found.extend(key[2:] for key in matched["key"].to_pylist()
                     if isinstance(key, str) and key.startswith("i:") and "#" not in key)
    return found
