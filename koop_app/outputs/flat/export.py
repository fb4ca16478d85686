"""An export: every row of a query, read from the engine in chunks and handed on as Arrow.

A spreadsheet or BI tool wants *all* matching rows, not one page of ``maxRecordCount``. An
export therefore reads the rows ``resultOffset`` onwards (at most ``resultRecordCount`` of them
when given), in the query's order (``orderByFields``, then the object id: a total order), in
chunks of the engine's own pages: each chunk is one statement with its own time limit, held in
memory only while it is written, so a slow client never holds the engine and memory stays flat.

Its size is bounded by KOOP["EXPORT_MAX_ROWS"]: when more rows would come, the export is refused
upfront (a 400 naming the count and the limit) rather than cut short silently, from a count of
the matches (the same filters as ``returnCountOnly``) run before the first row is read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pyarrow as pa
from django.http import HttpRequest

from koop_app import data, query
from koop_app.conf import koop_settings
from koop_app.errors import BadRequestError, InvalidParameterError
from koop_app.models import Dataset
from koop_app.models import Provider as ProviderRow
from koop_app.outputs import serving
from koop_app.outputs.flat.encoders import Column, kind_of
from koop_app.query.engine import WKB_COLUMN, X_COLUMN, Y_COLUMN, page_arrow

# Rows per engine statement: points and tables are small rows; lines and polygons may be
# large, so fewer of them are held at once. Pass-through sources are asked per chunk.
POINT_CHUNK_ROWS = 50_000
SHAPE_CHUNK_ROWS = 5_000
PASS_THROUGH_CHUNK_ROWS = 10_000
POINT = "esriGeometryPoint"

# Parameters of ours, and GeoServices ones an export has no use for: paging is the export's
# own (rows past a page are read, never dropped), quantization snaps for drawing, not for data.
OWN_PARAMETERS = ("geometryFormat", "header", "bom")
DROPPED_PARAMETERS = ("resultOffset", "resultRecordCount", "resultType",
                      "returnExceededLimitFeatures", "maxRecordCountFactor",
                      "quantizationParameters", "returnCentroid", "f", "callback")
GEOMETRY_FORMATS = ("auto", "xy", "wkt", "none")
# What does not change how many rows match: left out of the count.
COUNT_UNUSED = ("orderByFields", "outSR", "returnGeometry", "geometryPrecision",
                "maxAllowableOffset")


class ExportTooLargeError(BadRequestError):
    """More rows match than KOOP["EXPORT_MAX_ROWS"] lets one export hold."""

    def __init__(self, rows: int | None, cap: int) -> None:
        self.rows, self.cap = rows, cap
        size = f"{rows:,} rows" if rows is not None else f"more than {cap:,} rows"
        super().__init__(
            f"The export would hold {size}; an export holds at most {cap:,}.",
            details=["Narrow the query (where, geometry, time, objectIds) or export it in "
                     "parts with resultOffset and resultRecordCount."])


@dataclass
class Export:
    """A planned export: its columns, the layer, and its rows (the first chunk already read)."""

    dataset: Dataset
    layers: data.LayerSet
    table: data.LayerTable
    columns: list[Column]
    first: pa.Table
    rest: Iterator[pa.Table] = field(default_factory=lambda: iter(()))

    def chunks(self) -> Iterator[pa.Table]:
        yield self.first
        yield from self.rest


def export_params(params: Mapping[str, str]) -> dict[str, str]:
    """The request's GeoServices parameters an export hands to the engine (paging aside)."""
    return {key: value for key, value in params.items()
            if key not in OWN_PARAMETERS and key not in DROPPED_PARAMETERS}


def geometry_format(params: Mapping[str, str]) -> str:
    chosen = (params.get("geometryFormat") or "auto").strip().lower()
    if chosen not in GEOMETRY_FORMATS:
        raise InvalidParameterError("geometryFormat", "expected xy, wkt or none")
    return chosen


def header_names(params: Mapping[str, str]) -> str:
    chosen = (params.get("header") or "name").strip().lower()
    if chosen not in ("name", "alias"):
        raise InvalidParameterError("header", "expected name or alias")
    return chosen


class Planner:
    """Plans an export of one layer of ``dataset`` for the request's ``params``."""

    def __init__(self, request: HttpRequest, dataset: Dataset, layer_id: int,
                 params: Mapping[str, str]) -> None:
        self.request, self.dataset, self.layer_id = request, dataset, layer_id
        self.raw = dict(params)
        self.fmt = geometry_format(params)
        self.header = header_names(params)
        self.base = export_params(params)
        if self.fmt == "none":
            self.base["returnGeometry"] = "false"
        # Checked before any source is asked (what does not depend on the layer's fields).
        self.common = query.parse_common(params)
        if self.common.limit == 0:
            raise InvalidParameterError("resultRecordCount", "must be at least 1")
        self.pass_through = dataset.cache_policy == ProviderRow.PASS_THROUGH
        self.cap = int(koop_settings.EXPORT_MAX_ROWS)
        self._opened: dict[tuple[tuple[str, str], ...],
                           tuple[data.LayerSet, data.LayerTable]] = {}

    # --- the layer ----------------------------------------------------------------------------

    def open(self, params: Mapping[str, str]) -> tuple[data.LayerSet, data.LayerTable]:
        """The layers asked with ``params`` (an answer again for the same ones: the layer, the
        count and the first chunk may ask a pass-through source the same question)."""
        key = tuple(sorted(params.items()))
        if key not in self._opened:
            layers = serving.open_layers(self.request, self.dataset, layer=self.layer_id,
                                         method="query", params=params)
            if len(self._opened) >= 2:
                self._opened.clear()
            self._opened[key] = (layers, layers.layer(self.layer_id))
        return self._opened[key]

    def layers(self) -> data.LayerSet:
        """The layers the answer is validated against (HTTP caching); a pass-through source
        is not asked here (its answers are never cached)."""
        if self.pass_through:
            return data.LayerSet("", "", (), pass_through=True)
        return self.open(self.base)[0]

    # --- the plan -----------------------------------------------------------------------------

    def plan(self) -> Export:
        common = self.common
        if common.count_only or common.ids_only or common.extent_only:
            return self._summary()
        if self.pass_through:
            chunk = PASS_THROUGH_CHUNK_ROWS
            layers, table = self.open(self._paged(common.offset, chunk))
        else:
            layers, table = self.open(self.base)
            chunk = POINT_CHUNK_ROWS if table.schema.geometry_type in (POINT, None) \
                else SHAPE_CHUNK_ROWS
        chunk = min(chunk, int(koop_settings.MAX_RESULT_RECORDS))
        parsed = serving.parse(self.dataset, table, self._paged(common.offset, chunk))
        if self.fmt == "xy" and table.schema.geometry_type not in (POINT, None):
            raise InvalidParameterError("geometryFormat", "xy is for point layers; use wkt")
        if parsed.statistics:
            return self._statistics(layers, table)
        wanted = self._wanted(table)
        xy = self._xy(table)
        # One row at least, for the columns even of an empty answer; a pass-through source
        # is asked as it was for the layer (one request for both).
        asked = chunk if self.pass_through else max(min(chunk, wanted), 1)
        first, more, page = self._chunk(table, common.offset, asked, xy)
        first = first.slice(0, wanted)
        columns = self._columns(parsed, page, first.schema.names)
        rest = self._rest(table, common.offset + first.num_rows, wanted - first.num_rows,
                          chunk, xy) if more and first.num_rows else iter(())
        return Export(self.dataset, layers, table, columns, first, rest)

    def _paged(self, offset: int, count: int) -> dict[str, str]:
        return {**self.base, "resultOffset": str(offset), "resultRecordCount": str(count)}

    def _xy(self, table: data.LayerTable) -> bool:
        return self.fmt in ("auto", "xy") and table.schema.geometry_type == POINT

    def _wanted(self, table: data.LayerTable) -> int:
        """How many rows the export holds at most; refused when more than the cap match."""
        limit = self.common.limit
        if limit is not None and limit <= self.cap:
            return limit
        # Only what selects rows: a source answering counts may not know the other fields.
        unused = COUNT_UNUSED + (() if self.common.distinct else ("outFields",))
        counting = {**{k: v for k, v in self.base.items() if k not in unused},
                    "returnCountOnly": "true"}
        counted = table if not self.pass_through else self.open(counting)[1]
        _, result = serving.run_query(self.dataset, counted, counting)
        rows = max(int(result.count or 0) - self.common.offset, 0)
        if limit is not None:
            rows = min(rows, limit)
        if rows > self.cap:
            raise ExportTooLargeError(rows, self.cap)
        return rows

    def _chunk(self, table: data.LayerTable, offset: int, count: int, xy: bool
               ) -> tuple[pa.Table, bool, query.Page]:
        """Rows ``offset`` to ``offset + count`` and whether more match after them."""
        params = self._paged(offset, count)
        if self.pass_through:
            _, table = self.open(params)  # the source is asked for this chunk
        parsed = serving.parse(self.dataset, table, params)
        result = query.run(parsed, table, query.RecordLimits(count, count, count))
        assert result.page is not None
        rows, more = page_arrow(result.page, points_as_xy=xy)
        return rows, more or result.exceeded_transfer_limit, result.page

    def _rest(self, table: data.LayerTable, offset: int, left: int, chunk: int, xy: bool
              ) -> Iterator[pa.Table]:
        while left > 0:
            rows, more, _ = self._chunk(table, offset, min(chunk, left), xy)
            if rows.num_rows:
                yield rows
            if not more or not rows.num_rows:
                return
            offset += rows.num_rows
            left -= rows.num_rows

    def _statistics(self, layers: data.LayerSet, table: data.LayerTable) -> Export:
        """Statistics are computed in one statement: at most MAX_RESULT_RECORDS rows (groups)."""
        limit = self.common.limit
        most = min(limit if limit is not None else self.cap,
                   int(koop_settings.MAX_RESULT_RECORDS))
        params = self._paged(self.common.offset, most)
        parsed = serving.parse(self.dataset, table, params)
        result = query.run(parsed, table, query.RecordLimits(most, most, most))
        if result.exceeded_transfer_limit and (limit is None or limit > most):
            raise ExportTooLargeError(None, most)
        assert result.page is not None
        rows, _ = page_arrow(result.page, points_as_xy=False)
        return Export(self.dataset, layers, table, self._columns(parsed, result.page,
                                                                 rows.schema.names), rows)

    def _summary(self) -> Export:
        """returnCountOnly / returnIdsOnly / returnExtentOnly as a small table."""
        layers, table = self.open(self.base)
        _, result = serving.run_query(self.dataset, table, self.base)
        columns: dict[str, pa.Array] = {}
        if result.object_ids is not None and result.ids is not None:
            columns[table.schema.object_id_field] = pa.array(result.ids, pa.int64())
        if result.extent_only:
            for name, value in zip(("xmin", "ymin", "xmax", "ymax"),
                                   result.extent or (None,) * 4, strict=True):
                columns[name] = pa.array([value], pa.float64())
        if result.count is not None:
            columns["count"] = pa.array([result.count], pa.int64())
        rows = pa.table(columns)
        return Export(self.dataset, layers, table, [Column(n, n) for n in rows.column_names],
                      rows)

    # --- the columns --------------------------------------------------------------------------

    def _columns(self, parsed: query.Query, page: query.Page, present: list[str]
                 ) -> list[Column]:
        """The page's fields (names or aliases), then its geometry as x/y or WKT."""
        alias = self.header == "alias"
        columns = [Column((f.alias or f.name) if alias else f.name, f.name, kind_of(f.type))
                   for f in page.fields]
        taken = {c.name.lower() for c in columns}
        precision = parsed.geometry_precision
        if X_COLUMN in present:
            columns += [Column(_free("x", taken), X_COLUMN, precision=precision),
                        Column(_free("y", taken), Y_COLUMN, precision=precision)]
        elif WKB_COLUMN in present:
            columns.append(Column(_free("wkt", taken), WKB_COLUMN, "wkb", precision))
        return columns


def _free(name: str, taken: set[str]) -> str:
    """``name``, or ``geometry_<name>`` (and more underscores) when a field already has it."""
    candidate = name
    while candidate.lower() in taken:
        candidate = f"geometry_{candidate}" if candidate == name else f"_{candidate}"
    taken.add(candidate.lower())
    return candidate
