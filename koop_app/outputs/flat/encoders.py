"""Arrow rows as CSV (RFC 4180) or JSON records, a column at a time: no Python loop per row.

Each column becomes a text array (``pyarrow.compute`` casts, replaces and joins), the columns are
joined into one line per row, and the lines into one buffer per slice of rows. Values:

- integers and doubles as their shortest round-trip text (NaN and infinities: empty / null);
- dates (epoch milliseconds) as ISO 8601 UTC, ``2024-05-01T12:30:00Z`` (``.123Z`` with
  milliseconds);
- text as it is; in CSV quoted only when it holds a quote, a comma or a line break, and the
  empty string as ``""`` so that it stays apart from a null (an empty field);
- geometries as ``x``/``y`` doubles (points) or WKT (``shapely.to_wkt``, vectorised).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from koop_app.data.schema import DATE

# Rows per joined buffer: large enough for the joins to dominate Python's overhead, small
# enough that a buffer of long WKT stays a few MB.
SLICE_ROWS = 8192
SHAPE_SLICE_ROWS = 1024
CRLF = "\r\n"  # RFC 4180 section 2: records end with CRLF
# GEOS writes the shortest text that reads back as the same double with 17 digits and trim.
FULL_PRECISION = 17
_JSON_ESCAPES = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}


@dataclass(frozen=True)
class Column:
    """One output column: its header (CSV) or key (JSON), where it comes from, how it reads.

    ``kind`` is "date" (epoch ms), "wkb" (a geometry to write as WKT) or "value" (by Arrow
    type). ``source`` is the column of the engine's Arrow page.
    """

    name: str
    source: str
    kind: str = "value"
    precision: int | None = None  # decimals of x/y and WKT coordinates (geometryPrecision)


def kind_of(field_type: str) -> str:
    return "date" if field_type == DATE else "value"


# --- one column as text ---------------------------------------------------------------------

def _iso_dates(values: pa.Array) -> pa.Array:
    """Epoch milliseconds as ISO 8601 UTC: whole seconds without a fraction."""
    millis = values.cast(pa.int64())
    stamps = millis.cast(pa.timestamp("ms", tz="UTC"))
    seconds = stamps.cast(pa.timestamp("s", tz="UTC"), safe=False)  # truncated
    fine = pc.strftime(stamps, format="%Y-%m-%dT%H:%M:%SZ")  # %S carries .mmm for ms
    whole = pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%SZ")
    return pc.if_else(pc.equal(seconds.cast(pa.timestamp("ms", tz="UTC")), stamps), whole, fine)


def _timestamps(values: pa.Array) -> pa.Array:
    millis = values.cast(pa.timestamp("ms", tz="UTC"), safe=False).cast(pa.int64())
    return _iso_dates(millis)


def _wkt(values: pa.Array, precision: int | None) -> pa.Array:
    geometries = shapely.from_wkb(values.to_numpy(zero_copy_only=False))
    text = shapely.to_wkt(geometries, rounding_precision=FULL_PRECISION if precision is None
                          else precision, trim=True)
    return pa.array(np.asarray(text, dtype=object), type=pa.string())


def _text(values: pa.Array, column: Column) -> tuple[pa.Array, bool]:
    """The column as text (nulls kept) and whether it is text in JSON (to be quoted)."""
    kind = values.type
    if column.kind == "date":
        return _iso_dates(values), True
    if column.kind == "wkb":
        return _wkt(values, column.precision), True
    if pa.types.is_null(kind):
        return pa.nulls(len(values), pa.string()), False
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return _timestamps(values), True
    if pa.types.is_boolean(kind):
        return values.cast(pa.string()), False
    if pa.types.is_integer(kind):
        return values.cast(pa.string()), False
    if pa.types.is_floating(kind):
        if column.precision is not None:
            values = pc.round(values, ndigits=column.precision)
        finite = pc.is_finite(values)
        # JSON has no NaN or Infinity; a spreadsheet reads an empty cell as "no value".
        return pc.if_else(finite, values.cast(pa.string()), pa.scalar(None, pa.string())), False
    if pa.types.is_decimal(kind):
        return values.cast(pa.string()), False
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return values.cast(pa.string()), True
    if pa.types.is_string(kind):
        return values, True
    return values.cast(pa.string()), True


def _csv_field(text: pa.Array, delimiter: str) -> pa.Array:
    """RFC 4180: a field with a quote, the delimiter or a line break is quoted, its quotes
    doubled; so is the empty string (an unquoted empty field is a null)."""
    needs = pc.or_(pc.match_substring_regex(text, f'["{delimiter}\\r\\n]'),
                   pc.equal(pc.utf8_length(text), 0))
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
    return pc.if_else(needs, quoted, text)


def _json_string(text: pa.Array) -> pa.Array:
    """JSON string literals (RFC 8259 section 7): backslash, quote and control characters
    escaped."""
    text = pc.replace_substring(pc.replace_substring(text, "\\", "\\\\"), '"', '\\"')
    if pc.any(pc.match_substring_regex(text, r"[\x00-\x1f]")).as_py():
        for code in range(0x20):
            text = pc.replace_substring(text, chr(code),
                                        _JSON_ESCAPES.get(code, f"\\u{code:04x}"))
    return pc.binary_join_element_wise('"', text, '"', "")


def _joined(lines: pa.Array, separator: str) -> bytes:
    """The lines joined by ``separator`` into one buffer (one Arrow call)."""
    if not len(lines):
        return b""
    joined = pc.binary_join(pa.ListArray.from_arrays([0, len(lines)], lines), separator)
    return joined[0].as_buffer().to_pybytes()


def _slices(table: pa.Table, rows: int) -> Iterator[pa.Table]:
    for start in range(0, table.num_rows, rows):
        yield table.slice(start, rows)


def slice_rows(columns: Sequence[Column]) -> int:
    return SHAPE_SLICE_ROWS if any(c.kind == "wkb" for c in columns) else SLICE_ROWS


# --- CSV --------------------------------------------------------------------------------------

def csv_header(columns: Sequence[Column], delimiter: str = ",") -> bytes:
    names = _csv_field(pa.array([c.name for c in columns], pa.string()), delimiter)
    return (delimiter.join(names.to_pylist()) + CRLF).encode()


def csv_rows(table: pa.Table, columns: Sequence[Column], delimiter: str = ",") -> Iterator[bytes]:
    """Each slice of ``table``'s rows as CSV lines (CRLF after each)."""
    for part in _slices(table, slice_rows(columns)):
        fields = []
        for column in columns:
            text, _ = _text(part.column(column.source).combine_chunks(), column)
            fields.append(_csv_field(text, delimiter))
        if fields:
            lines = pc.binary_join_element_wise(*fields, delimiter, null_handling="replace",
                                                null_replacement="")
        else:
            lines = pa.array([""] * part.num_rows, pa.string())
        yield _joined(lines, CRLF) + CRLF.encode()


# --- JSON records -----------------------------------------------------------------------------

def json_records(table: pa.Table, columns: Sequence[Column]) -> Iterator[pa.Array]:
    """Each slice of ``table``'s rows as JSON object texts ``{"key": value, ...}``."""
    keys = [orjson.dumps(c.name).decode() + ":" for c in columns]
    for part in _slices(table, slice_rows(columns)):
        pieces: list[pa.Array | str] = ["{"]
        for index, column in enumerate(columns):
            text, quoted = _text(part.column(column.source).combine_chunks(), column)
            value = _json_string(text) if quoted else text
            pieces += ["," + keys[index] if index else keys[index], pc.fill_null(value, "null")]
        pieces.append("}")
        if len(columns):
            yield pc.binary_join_element_wise(*pieces, "")
        else:
            yield pa.array(["{}"] * part.num_rows, pa.string())


class JSONArrayWriter:
    """Records of a JSON array written a slice at a time: a comma before all but the first."""

    def __init__(self) -> None:
        self.first = True

    def rows(self, table: pa.Table, columns: Sequence[Column]) -> Iterator[bytes]:
        for records in json_records(table, columns):
            if len(records):
                yield (b"" if self.first else b",") + _joined(records, ",")
                self.first = False


def ndjson_rows(table: pa.Table, columns: Sequence[Column]) -> Iterator[bytes]:
    """Newline-delimited JSON: one record per line, each ended by LF."""
    for records in json_records(table, columns):
        if len(records):
            yield _joined(records, "\n") + b"\n"
