"""Proxy an existing ArcGIS FeatureServer (or MapServer): Koop's most used provider.

``/arcgis/rest/services/<server>/<service>/FeatureServer/<layer>`` serves layer ``<layer>``
of ``<service>`` on the server named ``<server>`` in ``KOOP["CONNECTIONS"]["arcgis"]``. A
service path holds "/" (``Hosted/Parks``) and a route segment cannot: the id spells it ``::``
(``Hosted::Parks``), as Koop's GitHub provider does, or the ``service`` option names it.

Pass-through (the provider's default policy): each request asks the source. The filters
(``where``, ``geometry`` & co., ``objectIds``, ``time``) and the paging window are sent to it
and reported in ``filtersApplied``; counts, extents, object ids and statistics are the source's
own answers. Features are asked in WGS 84 and our engine projects them (``outSR``), so the
answer's spatial reference is always the one it says. A window larger than the source's
maxRecordCount is read page by page: ``resultOffset`` where the source supports pagination,
else the matching object ids first, then features by chunks of object ids.

Cached (a dataset's ``cached`` option, for a slow server; or the Provider row's policy set to
"cached" for all): a refresh reads every layer whole, paged the same way, into our cache; the
engine answers from it until the next refresh.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from koop_app.errors import NotFoundError, SourceFormatError, SourceTooLargeError
from koop_app.options import Option
from koop_app.provider import CachePolicy, Provider, ProviderRequest
from koop_app.query import RecordLimits, parse_common
from koop_app.query.sr import WGS84, from_wkid, transformer

from .esri import field_type, to_geojson
from .source import Server, SourceService

logger = logging.getLogger(__name__)

PATH_SEPARATOR = "::"  # "/" of a service path, in a route's id segment
_SEGMENT = re.compile(r"^[A-Za-z0-9_.\- ]+$")
DEFAULT_SOURCE_PAGE = 1000  # ArcGIS Server's default maxRecordCount
# Filters sent to the source as they came; parse_common has checked them already.
SPATIAL_PARAMETERS = ("geometry", "geometryType", "spatialRel", "inSR", "distance", "units")


def _check_service_path(value: str) -> str:
    path = value.strip().strip("/").replace(PATH_SEPARATOR, "/")
    if path and not all(_SEGMENT.match(part) and part not in (".", "..")
                        for part in path.split("/")):
        raise ValueError("must be a service path like Hosted/Parks (letters, digits, '_', '-', "
                         "'.', separated by '/')")
    return path


def _check_positive(value: int) -> int:
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def service_path(request: ProviderRequest) -> str:
    """The service's path on its server: the ``service`` option, else the route id."""
    path = request.options.get("service") or _check_or_404(request.id or "")
    if not path:
        raise NotFoundError("Service not found.")
    return path


def _check_or_404(dataset_id: str) -> str:
    try:
        return _check_service_path(dataset_id)
    except ValueError:
        raise NotFoundError("Service not found.",
                            log_message=f"arcgis: {dataset_id!r} is not a service path") from None


class ArcGISProvider(Provider):
    """``/arcgis/rest/services/<server>/<service>/FeatureServer``: an ArcGIS service, proxied."""

    name = "arcgis"
    title = "ArcGIS FeatureServer (proxied)"
    description = ("A layer of an existing ArcGIS Server, ArcGIS Enterprise or ArcGIS Online "
                   "FeatureServer or MapServer. Host: a server configured in "
                   "KOOP['CONNECTIONS']['arcgis']; id: the service path, '/' written '::' "
                   "(Hosted::Parks).")
    version = "1.0.0"
    hosts = True
    connection_hosts = True  # the host names a server of KOOP["CONNECTIONS"]["arcgis"]
    cache_policy = "pass-through"
    options_schema = (
        Option("cached", bool, default=False, label="Cache the whole service",
               help="For a slow server: read every layer on refresh and answer from our cache "
                    "(refreshed after the cache lifetime) instead of asking on each request."),
        Option("service", str, default="", check=_check_service_path, label="Service path",
               help="The service's path under the server's rest/services, e.g. Hosted/Parks; "
                    "empty: the route's id, '::' read as '/'."),
        Option("service_type", str, default="FeatureServer",
               choices=("FeatureServer", "MapServer"), label="Service type"),
        Option("paging", str, default="auto", choices=("auto", "offset", "objectids"),
               label="Paging at the source",
               help="auto: resultOffset when the source says it supports pagination, else by "
                    "object ids; offset or objectids to force one."),
        Option("page_size", int, default=0, check=_check_positive, label="Page size",
               help="Features per request to the source; 0: the source's maxRecordCount."),
        Option("max_features", int, default=100_000, check=_check_positive,
               label="Most features per read",
               help="The most features read for one answer that cannot be paged at the "
                    "source, and per layer of a cached copy."),
        Option("metadata_seconds", int, default=60, check=_check_positive,
               label="Layer info kept (seconds)",
               help="How long the source's layer list (fields, capabilities) is reused "
                    "before it is asked again; 0: on every request."),
    )

    def cache_policy_for(self, dataset: Any) -> CachePolicy | None:
        """A dataset with the ``cached`` option is cached whatever the row's policy."""
        return "cached" if (dataset.options or {}).get("cached") is True else None

    def get_data(self, request: ProviderRequest) -> dict[str, Any]:
        service = SourceService(Server.named(request.host), service_path(request),
                                request.options.get("service_type") or "FeatureServer")
        info = service.layers(float(request.options.get("metadata_seconds") or 0))
        entries = _entries(info)
        reader = _Reader(service, request.options)
        dataset = request.dataset
        if dataset is not None and dataset.is_cached:
            return _document([(entry, reader.everything(entry)) for entry in entries])
        layer, method = request.params.get("layer"), request.params.get("method")
        if layer is None or method not in ("query", "feature", "generateRenderer"):
            return _document([(entry, {}) for entry in entries])  # info: no features needed
        entry = next((e for e in entries if e["id"] == layer), None)
        if entry is None:
            raise NotFoundError("Layer not found.", details=[f"Invalid layer id {layer!r}"])
        return _document([(entry, reader.answer(entry, request))])


def _entries(info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The source's layers and tables, each with an int ``id`` and our ``kind``."""
    out = []
    for kind, name in (("layer", "layers"), ("table", "tables")):
        for item in info.get(name) or []:
            if isinstance(item, dict) and isinstance(item.get("id"), int) and \
                    item.get("type") not in ("Group Layer", "Raster Layer"):
                is_table = kind == "table" or item.get("type") == "Table" or \
                    not item.get("geometryType")
                out.append({**item, "_kind": "table" if is_table else "layer"})
    if not out:
        raise SourceFormatError("The ArcGIS service has no feature layer or table.")
    return out


def _document(parts: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """{"layers": [...], "tables": [...]}: each a FeatureCollection with the layer's metadata."""
    out: dict[str, list[dict[str, Any]]] = {"layers": [], "tables": []}
    for entry, answer in parts:
        collection = {"type": "FeatureCollection", "features": [], **answer}
        collection["metadata"] = {**layer_metadata(entry), **answer.get("metadata", {})}
        out["tables" if entry["_kind"] == "table" else "layers"].append(collection)
    return {key: value for key, value in out.items() if value}


def object_id_field(entry: Mapping[str, Any]) -> str:
    named = entry.get("objectIdField")
    if isinstance(named, str) and named:
        return named
    for field in entry.get("fields") or []:
        if isinstance(field, dict) and field.get("type") == "esriFieldTypeOID":
            return str(field.get("name"))
    return "OBJECTID"


def kept_fields(entry: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The attributes we serve, by name, as metadata fields (blobs, rasters left out)."""
    out = {}
    for field in entry.get("fields") or []:
        if not isinstance(field, dict) or not isinstance(field.get("name"), str):
            continue
        kind = field_type(field.get("type"))
        if kind is not None:
            out[field["name"]] = {"name": field["name"], "type": kind,
                                  "alias": field.get("alias") or field["name"]}
    return out


def layer_metadata(entry: Mapping[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "id": entry["id"],
        "name": entry.get("name") or "",
        "description": entry.get("description") or "",
        "idField": object_id_field(entry),
        "fields": list(kept_fields(entry).values()),
    }
    if entry.get("displayField"):
        metadata["displayField"] = entry["displayField"]
    if entry.get("copyrightText"):
        metadata["copyrightText"] = entry["copyrightText"]
    if entry["_kind"] == "layer" and entry.get("geometryType"):
        metadata["geometryType"] = entry["geometryType"]
        extent = wgs84_extent(entry.get("extent"))
        if extent is not None:
            metadata["extent"] = list(extent)
    time_info = entry.get("timeInfo")
    if isinstance(time_info, dict) and time_info.get("startTimeField"):
        metadata["timeInfo"] = {"startTimeField": time_info["startTimeField"],
                                "endTimeField": time_info.get("endTimeField")}
    return metadata


def wgs84_extent(extent: Any) -> tuple[float, float, float, float] | None:
    """An Esri extent in its spatial reference as WGS 84 (xmin, ymin, xmax, ymax)."""
    if not isinstance(extent, dict):
        return None
    try:
        values = [float(extent[key]) for key in ("xmin", "ymin", "xmax", "ymax")]
    except (KeyError, TypeError, ValueError):
        return None
    if any(v != v for v in values):  # NaN: an empty layer
        return None
    reference = extent.get("spatialReference") or {}
    wkid = reference.get("latestWkid") or reference.get("wkid") or 4326
    try:
        sr = from_wkid(int(wkid))
    except (TypeError, ValueError):
        return None
    if sr.is_wgs84:
        return values[0], values[1], values[2], values[3]
    move = transformer(sr.crs, WGS84.crs)
    xs, ys = move.transform([values[0], values[2], values[0], values[2]],
                            [values[1], values[1], values[3], values[3]])
    if not all(v == v and abs(v) != float("inf") for v in [*xs, *ys]):
        return None
    return min(xs), min(ys), max(xs), max(ys)


class _Reader:
    """Reads one layer of a SourceService: filters, paging and the special answers."""

    def __init__(self, service: SourceService, options: Mapping[str, Any]) -> None:
        self.service = service
        self.options = options
        self.max_features = int(options.get("max_features") or 100_000)

    # --- what to ask --------------------------------------------------------------------

    def answer(self, entry: dict[str, Any], request: ProviderRequest) -> dict[str, Any]:
        """A query route's answer, as much of it done at the source as it can do."""
        method = request.params.get("method")
        query = request.query
        oid = object_id_field(entry)
        if method == "feature":  # /FeatureServer/<layer>/<objectId>: the id ends the path
            path = request.http_request.path if request.http_request is not None else ""
            wanted = path.rstrip("/").rsplit("/", 1)[-1]
            if not wanted.isascii() or not wanted.isdigit():
                raise NotFoundError("Feature not found.")
            features = self.window(entry, {"where": "1=1", "objectIds": wanted}, None)[0]
            return self.collection(entry, features, {"objectIds": True})
        filters, applied = self.filters(query)
        if method == "generateRenderer":  # classified by our engine on every matching row
            return self.collection(entry, self.all_rows(entry, filters), {})
        parsed = request.parsed or parse_common(query)
        special = self.special(entry, query, parsed, filters, applied, oid)
        if special is not None:
            return special
        geometry = parsed.return_geometry or parsed.extent_only
        out_fields = self.out_fields(entry, query, oid)
        if parsed.ids_only:
            out_fields, geometry = self.order_names(query, oid), False
        dataset = request.dataset
        limit = RecordLimits.for_layer(
            dataset.effective_max_record_count if dataset is not None else 1000,
            entry.get("geometryType")).for_query(parsed)
        count = min(parsed.limit or limit, limit)
        ordered = bool((query.get("orderByFields") or "").strip())
        if parsed.distinct or parsed.count_only or parsed.extent_only or parsed.ids_only or (
                ordered and not self.paginates(entry)):
            # The engine needs every matching row: distinct values, its own count or extent,
            # or an order the source cannot page in.
            rows = self.all_rows(entry, filters, out_fields=out_fields, geometry=geometry,
                                 order=query.get("orderByFields") or "")
            return self.collection(entry, rows, applied)
        # One window of the answer: one row past it tells whether more exist.
        rows, more = self.window(entry, {**filters, "outFields": out_fields,
                                         "returnGeometry": _flag(geometry)},
                                 (parsed.offset, count), order=query.get("orderByFields") or "")
        return self.collection(entry, rows, {**applied, "offset": True, "limit": True},
                               limit_exceeded=more)

    def special(self, entry: dict[str, Any], query: Mapping[str, str], parsed: Any,
                filters: dict[str, str], applied: dict[str, bool], oid: str
                ) -> dict[str, Any] | None:
        """Counts, extents, object ids and statistics as the source answers them."""
        suffix = f"/{entry['id']}/query"
        capabilities = entry.get("advancedQueryCapabilities") or {}
        if (query.get("outStatistics") or "").strip():
            if not (capabilities.get("supportsStatistics") or entry.get("supportsStatistics")):
                return None  # our engine computes them over every matching row
            form = {**filters, "outStatistics": query["outStatistics"]}
            for name in ("groupByFieldsForStatistics", "havingClause", "orderByFields"):
                if (query.get(name) or "").strip():
                    form[name] = query[name]
            body = self.service.call(suffix, form)
            rows = [f.get("attributes") or {} for f in _features_of(body)]
            return {"statistics": rows, "filtersApplied": applied}
        if parsed.distinct:
            return None
        if parsed.extent_only and capabilities.get("supportsReturningQueryExtent"):
            body = self.service.call(suffix, {**filters, "returnExtentOnly": "true",
                                              "returnCountOnly": _flag(parsed.count_only),
                                              "outSR": "4326"})
            extent = wgs84_extent(body.get("extent"))
            count = body.get("count")
            if extent is None and count not in (None, 0):
                return None
            answer: dict[str, Any] = {"filtersApplied": applied, "extent": extent}
            if isinstance(count, int):
                answer["count"] = count
            elif parsed.count_only:
                return None
            return answer if extent is not None else {**answer, "count": 0, "extent": None}
        if parsed.count_only and not parsed.extent_only:
            body = self.service.call(suffix, {**filters, "returnCountOnly": "true"})
            if not isinstance(body.get("count"), int):
                raise SourceFormatError("The ArcGIS server answered a count without a count.")
            return {"count": body["count"], "filtersApplied": applied}
        if parsed.ids_only and not (query.get("orderByFields") or "").strip():
            ids = self.ids(entry, filters)
            rows = [{"attributes": {oid: value}} for value in ids]
            return self.collection(entry, rows, applied)
        return None

    def filters(self, query: Mapping[str, str]) -> tuple[dict[str, str], dict[str, bool]]:
        """The request's filters as the source takes them, and what they apply."""
        filters = {"where": (query.get("where") or "").strip() or "1=1"}
        applied = {"where": True}
        if (query.get("geometry") or "").strip():
            for name in SPATIAL_PARAMETERS:
                if (query.get(name) or "").strip():
                    filters[name] = query[name]
            if "inSR" not in filters and "spatialReference" not in filters["geometry"]:
                # Our layers say WGS 84: a geometry without a reference is in it, whatever
                # the source's own reference is.
                filters["inSR"] = "4326"
            applied["geometry"] = True
        for name, key in (("objectIds", "objectIds"), ("time", "time")):
            if (query.get(name) or "").strip():
                filters[name] = query[name]
                applied[key] = True
        return filters, applied

    def out_fields(self, entry: Mapping[str, Any], query: Mapping[str, str], oid: str) -> str:
        """outFields for the source: the client's, with what our engine needs of each row."""
        names = [n.strip() for n in (query.get("outFields") or "").split(",") if n.strip()]
        if not names or "*" in names:
            return "*"
        known = {name.lower(): name for name in kept_fields(entry)}
        wanted = [oid, *names, *self.order_names(query, oid).split(",")]
        found = dict.fromkeys(known.get(n.lower(), n) for n in wanted if n)
        return ",".join(found)

    @staticmethod
    def order_names(query: Mapping[str, str], oid: str) -> str:
        names = [part.strip().split()[0] for part in (query.get("orderByFields") or "").split(",")
                 if part.strip()]
        return ",".join(dict.fromkeys([oid, *names]))

    # --- how to read ----------------------------------------------------------------------

    def page_size(self, entry: Mapping[str, Any]) -> int:
        source = entry.get("maxRecordCount")
        size = source if isinstance(source, int) and source > 0 else DEFAULT_SOURCE_PAGE
        wanted = int(self.options.get("page_size") or 0)
        return min(size, wanted) if wanted else size

    def paginates(self, entry: Mapping[str, Any]) -> bool:
        mode = self.options.get("paging") or "auto"
        if mode != "auto":
            return mode == "offset"
        capabilities = entry.get("advancedQueryCapabilities") or {}
        return bool(capabilities.get("supportsPagination"))

    def everything(self, entry: dict[str, Any]) -> dict[str, Any]:
        """The whole layer as a FeatureCollection (a cached copy)."""
        return self.collection(entry, self.all_rows(entry), {})

    def all_rows(self, entry: dict[str, Any], filters: dict[str, str] | None = None, *,
                 out_fields: str = "*", geometry: bool = True, order: str = ""
                 ) -> list[dict[str, Any]]:
        """Every matching row (at most ``max_features``, else a clear error)."""
        form = {**(filters or {"where": "1=1"}), "outFields": out_fields,
                "returnGeometry": _flag(geometry)}
        rows, more = self.window(entry, form, (0, self.max_features), order=order)
        if more:
            raise SourceTooLargeError(
                f"The ArcGIS layer has more than {self.max_features} matching features, the "
                "most read at once (the dataset's max_features option).",
                log_message=f"arcgis {self.service.server.name}: {self.service.url} layer "
                            f"{entry['id']}: over max_features={self.max_features}")
        return rows

    def window(self, entry: Mapping[str, Any], form: dict[str, str],
               window: tuple[int, int] | None, *, order: str = ""
               ) -> tuple[list[dict[str, Any]], bool]:
        """Rows ``offset .. offset + count`` of the answer (all when ``window`` is None) and
        whether more follow, read in pages the source allows."""
        form = {"outFields": "*", "returnGeometry": "true", **form, "outSR": "4326",
                "returnZ": "false", "returnM": "false"}
        offset, count = window if window is not None else (0, self.max_features)
        suffix = f"/{entry['id']}/query"
        page = self.page_size(entry)
        oid = object_id_field(entry)
        if self.paginates(entry):
            form["orderByFields"] = order or f"{oid} ASC"
            rows: list[dict[str, Any]] = []
            wanted = count + 1  # one past the window: whether more follow
            while len(rows) < wanted:
                ask = min(page, wanted - len(rows))
                body = self.service.call(suffix, {**form, "resultOffset": str(offset + len(rows)),
                                                  "resultRecordCount": str(ask)})
                got = _features_of(body)
                rows.extend(got)
                if not got or (len(got) < ask and not body.get("exceededTransferLimit")):
                    break
            return rows[:count], len(rows) > count
        ids = self.ids(entry, {k: v for k, v in form.items() if k in (
            "where", "objectIds", "time", *SPATIAL_PARAMETERS)})
        chosen = ids[offset: offset + count]
        rows = []
        for chunk in _chunks(chosen, page):
            body = self.service.call(suffix, {**{k: v for k, v in form.items() if k not in (
                "where", "objectIds", "time", *SPATIAL_PARAMETERS)}, "where": "1=1",
                "objectIds": ",".join(map(str, chunk))})
            rows.extend(_features_of(body))
        return rows, len(ids) > offset + count

    def ids(self, entry: Mapping[str, Any], filters: Mapping[str, str]) -> list[int]:
        """The matching object ids, ascending (the source's own order is unspecified)."""
        body = self.service.call(f"/{entry['id']}/query", {**filters, "returnIdsOnly": "true"})
        values = body.get("objectIds")
        if values is None:
            return []  # ArcGIS answers null when nothing matches
        if not isinstance(values, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise SourceFormatError("The ArcGIS server's object ids could not be read.")
        return sorted(set(values))

    def collection(self, entry: Mapping[str, Any], rows: list[dict[str, Any]],
                   applied: Mapping[str, bool], *, limit_exceeded: bool = False
                   ) -> dict[str, Any]:
        """Esri JSON features as a FeatureCollection (attributes we serve, GeoJSON geometry)."""
        keep = kept_fields(entry)
        features = []
        for row in rows:
            attributes = row.get("attributes") if isinstance(row, dict) else None
            if not isinstance(attributes, dict):
                raise SourceFormatError("A feature of the ArcGIS server has no attributes.")
            features.append({
                "type": "Feature",
                "properties": {k: v for k, v in attributes.items() if k in keep or not keep},
                "geometry": to_geojson(row.get("geometry")),
            })
        out: dict[str, Any] = {"type": "FeatureCollection", "features": features}
        if applied:
            out["filtersApplied"] = dict(applied)
        if limit_exceeded:
            out["metadata"] = {"limitExceeded": True}
        return out


def _features_of(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    features = body.get("features")
    if not isinstance(features, list):
        raise SourceFormatError("The ArcGIS server answered a query without features.",
                                log_message=f"arcgis: query answer without a features list: "
                                            f"{orjson.dumps(body)[:200]!r}")
    return features


def _chunks(values: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(values), max(1, size)):
        yield values[start: start + size]


def _flag(value: bool) -> str:
    return "true" if value else "false"
