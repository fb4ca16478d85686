"""The Esri FeatureCollection protocol buffer (``f=pbf``): query results to bytes.

The messages are those of ``FeatureCollection.proto`` beside this module. The caller quantizes:
geometries arrive as integers on the grid of a ``Transform``, already delta-encoded per part.

Nothing here loops over features in Python. Each column of a page becomes one Arrow binary array
that holds, row by row, that column's bytes of the Feature message (a wrapped Value, a geometry
header, packed coordinates); ``binary_join_element_wise`` then glues the arrays row by row. The
small bytes of neighbouring columns (tags, lengths, varints, floats) share one matrix, a column
per byte position with the count of bytes each row uses, transposed and compressed in one step.
Varints of a whole array (coordinates, part lengths, ids) are written in one pass per step.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

VERSION = "2.0"

GEOMETRY_TYPES = {
    "esriGeometryPoint": 0,
    "esriGeometryMultipoint": 1,
    "esriGeometryPolyline": 2,
    "esriGeometryPolygon": 3,
}
GEOMETRY_TYPE_NONE = 127

FIELD_TYPES = {
    "esriFieldTypeSmallInteger": 0,
    "esriFieldTypeInteger": 1,
    "esriFieldTypeSingle": 2,
    "esriFieldTypeDouble": 3,
    "esriFieldTypeString": 4,
    "esriFieldTypeDate": 5,
    "esriFieldTypeOID": 6,
    "esriFieldTypeGUID": 10,
    "esriFieldTypeGlobalID": 11,
    "esriFieldTypeXML": 12,
    "esriFieldTypeBigInteger": 13,
}

SQL_TYPES = {name: number for number, name in enumerate((
    "sqlTypeBigInt", "sqlTypeBinary", "sqlTypeBit", "sqlTypeChar", "sqlTypeDate",
    "sqlTypeDecimal", "sqlTypeDouble", "sqlTypeFloat", "sqlTypeGeometry", "sqlTypeGUID",
    "sqlTypeInteger", "sqlTypeLongNVarchar", "sqlTypeLongVarbinary", "sqlTypeLongVarchar",
    "sqlTypeNChar", "sqlTypeNVarchar", "sqlTypeOther", "sqlTypeReal", "sqlTypeSmallInt",
    "sqlTypeSqlXml", "sqlTypeTime", "sqlTypeTimestamp", "sqlTypeTimestamp2", "sqlTypeTinyInt",
    "sqlTypeVarbinary", "sqlTypeVarchar",
))}

ORIGINS = {"upperLeft": 0, "lowerLeft": 1}

# How each field type's values go on the wire (the Value member), see _attribute_pieces.
_VALUE_KINDS = {
    "esriFieldTypeSmallInteger": "int",
    "esriFieldTypeInteger": "int",
    "esriFieldTypeBigInteger": "int64",
    "esriFieldTypeOID": "oid",
    "esriFieldTypeSingle": "float",
    "esriFieldTypeDouble": "double",
    "esriFieldTypeDate": "date",
    "esriFieldTypeString": "string",
    "esriFieldTypeGUID": "string",
    "esriFieldTypeGlobalID": "string",
    "esriFieldTypeXML": "string",
}

# Keys (field number << 3 | wire type) written per row.
_FEATURE = 15 << 3 | 2
_ATTRIBUTE = 1 << 3 | 2
_GEOMETRY = 2 << 3 | 2
_CENTROID = 4 << 3 | 2
_LENGTHS = 2 << 3 | 2
_COORDS = 3 << 3 | 2
_STRING_VALUE = 1 << 3 | 2
_FLOAT_VALUE = 2 << 3 | 5
_DOUBLE_VALUE = 3 << 3 | 1
_SINT_VALUE = 4 << 3 | 0
_UINT_VALUE = 5 << 3 | 0
_UINT64_VALUE = 7 << 3 | 0
_SINT64_VALUE = 8 << 3 | 0

_BINARY = pa.large_binary()
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_TICKS_PER_MS = {"ms": 1, "us": 1000, "ns": 1_000_000}


@dataclass(frozen=True)
class Transform:
    """The integer grid: world x = translate x + qx * scale x (y by the origin's direction)."""

    origin: str  # "upperLeft" | "lowerLeft"
    scale: tuple[float, float]
    translate: tuple[float, float]


@dataclass(frozen=True)
class Parts:
    """Geometries of a page, flat (GeoArrow-like). What is written: coordinates quantized,
    per part the first vertex absolute then deltas (``quantize.snap``); before snapping the
    same layout holds float coordinates."""

    coords: np.ndarray  # shape (V, 2)
    part_lengths: np.ndarray  # int64, shape (P,): vertices per part
    # int64, shape (F + 1,): offsets into part_lengths; no parts = no geometry
    feature_parts: np.ndarray

    @property
    def features(self) -> int:
        return len(self.feature_parts) - 1


@dataclass(frozen=True)
class PbfField:
    """A field as the FeatureResult header describes it."""

    name: str
    type: str  # "esriFieldTypeString", ...
    alias: str
    sql_type: str  # "sqlTypeOther", ...


# --- the answer's header: small, built in Python --------------------------------------------------

def _varint(number: int) -> bytes:
    out = bytearray()
    while number > 0x7F:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _message(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _string(number: int, text: str) -> bytes:
    return _message(number, text.encode())


def _uint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _double(number: int, value: float) -> bytes:
    return _varint(number << 3 | 1) + struct.pack("<d", value)


def _spatial_reference(sr: Mapping[str, Any]) -> bytes:
    out = b""
    for number, key in ((1, "wkid"), (2, "latestWkid"), (3, "vcsWkid"), (4, "latestVcsWkid")):
        if sr.get(key) is not None:
            out += _uint(number, int(sr[key]))
    if sr.get("wkt"):
        out += _string(5, str(sr["wkt"]))
    return out


def _transform(transform: Transform) -> bytes:
    if transform.origin not in ORIGINS:
        raise ValueError(f"unknown quantization origin {transform.origin!r}")
    (x_scale, y_scale), (x_translate, y_translate) = transform.scale, transform.translate
    return (
        _uint(1, ORIGINS[transform.origin])
        + _message(2, _double(1, x_scale) + _double(2, y_scale))
        + _message(3, _double(1, x_translate) + _double(2, y_translate))
    )


def _field(field: PbfField) -> bytes:
    if field.type not in FIELD_TYPES:
        raise ValueError(f"field {field.name!r}: type {field.type!r} has no PBF encoding here")
    if field.sql_type not in SQL_TYPES:
        raise ValueError(f"field {field.name!r}: unknown SQL type {field.sql_type!r}")
    return (
        _string(1, field.name) + _uint(2, FIELD_TYPES[field.type]) + _string(3, field.alias)
        + _uint(4, SQL_TYPES[field.sql_type])
    )


def _envelope(message_bytes: bytes) -> bytes:
    """FeatureCollectionPBuffer{version, queryResult{<message_bytes>}}."""
    return _string(1, VERSION) + _message(2, message_bytes)


# --- per-row bytes, vectorized -------------------------------------------------------------------

# A piece is one column of per-row bytes: a fragment (up to w bytes per row, stored byte-major
# as a (w, N) matrix, with the bytes each row uses) or a binary Arrow array (a null is empty).
Fragment = tuple[np.ndarray, np.ndarray]  # (uint8 (w, N), bytes used per row (N,))
Piece = Fragment | pa.Array


def _varint_sizes(values: np.ndarray) -> np.ndarray:
    """Bytes of each unsigned value's varint, as uint8."""
    sizes = np.ones(len(values), np.uint8)
    if len(values):
        top = int(values.max())
        for k in range(1, 10):
            if top < 1 << 7 * k:
                break
            sizes += (values >= values.dtype.type(1 << 7 * k)).view(np.uint8)
    return sizes


def _narrow(values: np.ndarray) -> np.ndarray:
    """uint32 when every value fits: the shifts and masks below then move half the bytes."""
    if values.dtype == np.uint64 and len(values) and values.max() < 2**32:
        return values.astype(np.uint32)
    return values


def _zigzag(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.int64, copy=False)
    return ((values << 1) ^ (values >> 63)).view(np.uint64)


def _varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One buffer with the varint of every unsigned value in turn, and each varint's size."""
    values = _narrow(values)
    sizes = _varint_sizes(values)
    if not len(values):
        return np.empty(0, np.uint8), sizes
    ends = np.cumsum(sizes.astype(np.int64))
    total = int(ends[-1])
    # Output byte j holds 7 bits of its value, from bit 7 * k where k counts the value's bytes
    # up from 0: a running sum of ones that drops back to 0 at the start of every value.
    step = np.ones(total, np.int8)
    step[ends[:-1]] = 1 - sizes[:-1].view(np.int8)
    step[0] = 0
    k = np.cumsum(step, dtype=np.int32).view(np.uint32)
    out = (np.repeat(values, sizes) >> (k * 7).astype(values.dtype, copy=False)).astype(np.uint8)
    out &= 0x7F
    more = np.empty(total, np.bool_)  # a continuation bit on all but each value's last byte
    more[:-1] = k[1:] != 0
    more[-1] = False
    out |= more.view(np.uint8) << 7
    return out, sizes


def _varint_rows(values: np.ndarray, present: np.ndarray | None = None) -> Fragment:
    """Each row's varint as a matrix row; absent rows use no bytes."""
    values = _narrow(values)
    sizes = _varint_sizes(values)
    width = int(sizes.max()) if len(values) else 1
    columns = np.empty((width, len(values)), np.uint8)
    for k in range(width):
        byte = columns[k]
        np.bitwise_and(values >> values.dtype.type(7 * k), 0x7F, out=byte, casting="unsafe")
        if k < width - 1:
            byte |= (sizes > k + 1).view(np.uint8) << 7
    if present is not None:
        sizes = sizes * present
    return columns, sizes


def _const(rows: int, byte: int, present: np.ndarray | None = None) -> Fragment:
    used = np.ones(rows, np.uint8) if present is None else present.astype(np.uint8)
    return np.full((1, rows), byte, np.uint8), used


def _raw(values: np.ndarray, present: np.ndarray | None) -> Fragment:
    """Fixed-width little-endian values (float32/float64) as matrix rows."""
    width = values.dtype.itemsize
    little = values.astype(values.dtype.newbyteorder("<"), copy=False)
    matrix = np.ascontiguousarray(little).view(np.uint8).reshape(len(values), width).T
    used = np.full(len(values), width, np.uint8)
    if present is not None:
        used *= present
    return matrix, used


def _offsets(lengths: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _binary(offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    offsets = np.ascontiguousarray(offsets, np.int64)
    return pa.Array.from_buffers(
        _BINARY, len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _pack(fragments: list[Fragment]) -> pa.Array:
    """Lay the fragments side by side and keep each row's used bytes, in order."""
    rows = len(fragments[0][1])
    widths = [m.shape[0] for m, _ in fragments]
    # Filled byte-major (each fragment's bytes are contiguous there), transposed once to rows.
    matrix = np.empty((sum(widths), rows), np.uint8)
    keep = np.ones(matrix.shape, np.bool_)
    lengths = np.zeros(rows, np.int64)
    start = 0
    partial = False
    for (m, used), width in zip(fragments, widths, strict=True):
        matrix[start:start + width] = m
        lengths += used
        if not (used == width).all():
            partial = True
            for k in range(width):
                np.greater(used, k, out=keep[start + k])
        start += width
    data = np.ascontiguousarray(matrix.T).reshape(-1)
    if partial:
        data = np.compress(np.ascontiguousarray(keep.T).reshape(-1), data)
    return _binary(_offsets(lengths), data)


def _lengths(piece: Piece) -> np.ndarray:
    """Bytes per row of a piece (Arrow pieces are all large_binary: int64 offsets)."""
    if isinstance(piece, tuple):
        return piece[1].astype(np.int64)
    offsets = np.frombuffer(piece.buffers()[1], np.int64, len(piece) + 1, piece.offset * 8)
    lengths = np.diff(offsets)
    if piece.null_count:
        lengths[piece.is_null().to_numpy(zero_copy_only=False)] = 0
    return lengths


def _join(pieces: list[Piece]) -> pa.Array:
    """Concatenate the pieces row by row into one binary array."""
    arrays: list[pa.Array] = []
    fragments: list[Fragment] = []
    for piece in pieces:
        if isinstance(piece, tuple):
            fragments.append(piece)
            continue
        if fragments:
            arrays.append(_pack(fragments))
            fragments = []
        arrays.append(piece)
    if fragments:
        arrays.append(_pack(fragments))
    if len(arrays) == 1 and not arrays[0].null_count:
        return arrays[0]
    return pc.binary_join_element_wise(*arrays, pa.scalar(b"", _BINARY), null_handling="replace")


def _bytes_of(array: pa.Array) -> memoryview:
    """The concatenated values of a binary array without nulls."""
    if not len(array):
        return memoryview(b"")
    offsets = np.frombuffer(array.buffers()[1], np.int64, len(array) + 1, array.offset * 8)
    return memoryview(array.buffers()[2])[int(offsets[0]):int(offsets[-1])]


# --- attributes -----------------------------------------------------------------------------------

def _combined(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


def _valid(array: pa.Array) -> np.ndarray | None:
    if not array.null_count:
        return None
    return array.is_valid().to_numpy(zero_copy_only=False)


def _numbers(array: pa.Array, dtype: pa.DataType) -> np.ndarray:
    if pa.types.is_boolean(array.type):
        array = array.cast(pa.int8())
    if array.type != dtype:
        array = array.cast(dtype)
    if array.null_count:
        array = array.fill_null(0)
    return array.to_numpy(zero_copy_only=False)


def _epoch_ms(array: pa.Array) -> np.ndarray:
    """Dates as epoch milliseconds: int64 already, timestamps of any unit, date32/date64."""
    kind = array.type
    if pa.types.is_timestamp(kind):
        ticks = _numbers(array.cast(pa.int64()), pa.int64())
        if kind.unit == "s":
            return ticks * 1000
        return ticks // _TICKS_PER_MS[kind.unit]  # floor: before 1970 too, a date never rounds up
    if pa.types.is_date32(kind):
        return _numbers(array.cast(pa.int32()), pa.int64()) * 86_400_000
    if pa.types.is_date64(kind):
        return _numbers(array.cast(pa.int64()), pa.int64())
    return _numbers(array, pa.int64())


def _wrapped_varint(key: int, values: np.ndarray, present: np.ndarray | None) -> list[Piece]:
    """attributes: [0x0A][len][key][varint], or [0x0A][0x00] for a null."""
    rows = len(values)
    number = _varint_rows(values, present)
    used = number[1]
    length = (used + 1) * (used > 0)  # a varint has at least one byte: none means null
    return [
        _const(rows, _ATTRIBUTE),
        (length.reshape(1, rows), np.ones(rows, np.uint8)),
        _const(rows, key, present),
        number,
    ]


def _wrapped_fixed(key: int, values: np.ndarray, present: np.ndarray | None) -> list[Piece]:
    """attributes: [0x0A][1 + width][key][little-endian bytes], or [0x0A][0x00] for a null."""
    rows = len(values)
    width = values.dtype.itemsize
    length = np.full(rows, 1 + width, np.uint8)
    if present is not None:
        length *= present
    return [
        _const(rows, _ATTRIBUTE),
        (length.reshape(1, rows), np.ones(rows, np.uint8)),
        _const(rows, key, present),
        _raw(values, present),
    ]


def _string_pieces(array: pa.Array) -> list[Piece]:
    """attributes: [0x0A][varint len][0x0A][varint utf8 len][utf8], or [0x0A][0x00]."""
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = array.cast(pa.string())
    text = array.cast(_BINARY)
    present = _valid(text)
    size = _lengths(text)
    value_length = 1 + _varint_sizes(size.astype(np.uint64)).astype(np.int64) + size
    if present is not None:
        value_length *= present
    rows = len(text)
    return [
        _const(rows, _ATTRIBUTE),
        _varint_rows(value_length.astype(np.uint64)),
        _const(rows, _STRING_VALUE, present),
        _varint_rows(size.astype(np.uint64), present),
        text,
    ]


def _dictionary_pieces(array: pa.DictionaryArray) -> list[Piece]:
    """Encode each distinct string once, then take one per row (DuckDB ENUMs come this way)."""
    entries = _join(_string_pieces(array.dictionary))
    null_entry = pa.array([bytes([_ATTRIBUTE, 0])], _BINARY)
    entries = pa.concat_arrays([entries, null_entry])
    indices = array.indices.cast(pa.int64()).fill_null(len(entries) - 1)
    return [entries.take(indices)]


def _attribute_pieces(field: PbfField, column: pa.Array | pa.ChunkedArray) -> list[Piece]:
    """Feature.attributes of one field for every row: the field type picks the Value member."""
    kind = _VALUE_KINDS.get(field.type)
    if kind is None:
        raise ValueError(f"field {field.name!r}: type {field.type!r} has no PBF encoding here")
    array = _combined(column)
    if kind == "string":
        if pa.types.is_dictionary(array.type):
            return _dictionary_pieces(array)
        return _string_pieces(array)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    present = _valid(array)
    if kind in ("float", "double"):
        values = _numbers(array, pa.float32() if kind == "float" else pa.float64())
        # NaN and infinities have no JSON form: f=json writes them as null, and so do we.
        finite = np.isfinite(values)
        if not finite.all():
            present = finite if present is None else present & finite
        return _wrapped_fixed(_FLOAT_VALUE if kind == "float" else _DOUBLE_VALUE, values, present)
    if kind == "date":
        values = _epoch_ms(array)
    else:
        values = _numbers(array, pa.int64())
    if kind == "oid":
        if len(values) and values.min() < 0:
            raise ValueError(f"field {field.name!r}: object ids must not be negative")
        key = _UINT_VALUE if not len(values) or values.max() < 2**32 else _UINT64_VALUE
        return _wrapped_varint(key, values.view(np.uint64), present)
    key = _SINT64_VALUE
    if kind == "int" and (not len(values)
                          or (values.min() >= _INT32_MIN and values.max() <= _INT32_MAX)):
        key = _SINT_VALUE  # zigzag of an int32 is the same varint whichever width
    return _wrapped_varint(key, _zigzag(values), present)


# --- geometries -----------------------------------------------------------------------------------

def _geometry_pieces(parts: Parts, rows: int, key: int, points: bool) -> list[Piece]:
    """Feature.geometry (or .centroid) of each row; rows without parts get nothing."""
    feature_parts = np.asarray(parts.feature_parts, np.int64)
    part_lengths = np.asarray(parts.part_lengths, np.int64)
    coords = np.asarray(parts.coords, np.int64).reshape(-1, 2)
    if len(feature_parts) != rows + 1:
        raise ValueError(f"feature_parts has {len(feature_parts)} offsets for {rows} features")
    if len(part_lengths) != feature_parts[-1] or part_lengths.sum() != len(coords):
        raise ValueError("part_lengths does not match feature_parts and coords")
    counts = np.diff(feature_parts)
    present = counts > 0
    if points:
        if (counts > 1).any() or (part_lengths != 1).any():
            raise ValueError("a point geometry is at most one part of one vertex")
        return _point_pieces(coords, present, key)

    coord_bytes, coord_sizes = _varints(_zigzag(coords.reshape(-1)))
    coord_offsets = _offsets(coord_sizes)[2 * _offsets(part_lengths)[feature_parts]]
    coord_length = np.diff(coord_offsets).astype(np.uint64)
    length_bytes, length_sizes = _varints(part_lengths.astype(np.uint64))
    length_offsets = _offsets(length_sizes)[feature_parts]
    length_length = np.diff(length_offsets).astype(np.uint64)
    coords_header = _varint_rows(coord_length, present)
    lengths_header = _varint_rows(length_length, present)
    geometry_length = 2 + length_length + lengths_header[1] + coord_length + coords_header[1]
    return [
        _const(rows, key, present),
        _varint_rows(geometry_length, present),
        _const(rows, _LENGTHS, present),
        lengths_header,
        _binary(length_offsets, length_bytes),
        _const(rows, _COORDS, present),
        coords_header,
        _binary(coord_offsets, coord_bytes),
    ]


def _point_pieces(coords: np.ndarray, present: np.ndarray, key: int) -> list[Piece]:
    """Geometry{coords: [x, y]} (no lengths, as ArcGIS writes points), all as matrix rows."""
    rows = len(present)
    xy = np.zeros((rows, 2), np.uint64)
    xy[present] = _zigzag(coords).reshape(-1, 2)
    x, y = _varint_rows(xy[:, 0], present), _varint_rows(xy[:, 1], present)
    coord_length = x[1] + y[1]  # at most 20: one byte
    return [
        _const(rows, key, present),
        ((coord_length + 2).reshape(1, rows), present.view(np.uint8)),
        _const(rows, _COORDS, present),
        (coord_length.reshape(1, rows), present.view(np.uint8)),
        x,
        y,
    ]


# --- the four answers -----------------------------------------------------------------------------

def feature_result(
    *,
    fields: Sequence[PbfField],
    columns: Sequence[pa.Array | pa.ChunkedArray],
    object_id_field: str,
    geometry_type: str | None,
    spatial_reference: Mapping[str, Any],
    transform: Transform | None,
    geometry: Parts | None,
    centroids: Parts | None = None,
    exceeded_transfer_limit: bool = False,
) -> bytes:
    """A page of features: one Value per field per feature, quantized geometries, centroids.

    ``columns`` are Arrow arrays in the order of ``fields``, one row per feature (ints, floats,
    strings or dictionary-encoded strings, int64 epoch milliseconds or timestamps for dates,
    booleans, with nulls). ``geometry`` and ``centroids`` hold the page's parts on the grid of
    ``transform`` (a feature with no parts has none); points are written as coords only.
    ``spatial_reference`` takes the keys wkid, latestWkid, vcsWkid, latestVcsWkid and wkt.
    Raises ValueError for inputs that cannot be written (unknown types, negative object ids,
    shapes that do not line up).
    """
    if len(columns) != len(fields):
        raise ValueError(f"{len(columns)} columns for {len(fields)} fields")
    rows = 0
    if columns:
        rows = len(columns[0])
    elif geometry is not None:
        rows = len(geometry.feature_parts) - 1
    if any(len(column) != rows for column in columns):
        raise ValueError("columns differ in length")
    if geometry_type is not None and geometry_type not in GEOMETRY_TYPES:
        raise ValueError(f"unknown geometry type {geometry_type!r}")
    if (geometry is not None or centroids is not None) and transform is None:
        raise ValueError("quantized geometries need their transform")
    if geometry is not None and geometry_type is None:
        raise ValueError("geometries given for a layer without a geometry type")

    pieces: list[Piece] = []
    for field, column in zip(fields, columns, strict=True):
        pieces += _attribute_pieces(field, column)
    if geometry is not None:
        points = geometry_type == "esriGeometryPoint"
        pieces += _geometry_pieces(geometry, rows, _GEOMETRY, points)
    if centroids is not None:
        pieces += _geometry_pieces(centroids, rows, _CENTROID, True)
    features = b""
    if rows and pieces:
        length = sum((_lengths(piece) for piece in pieces), np.zeros(rows, np.int64))
        features = _bytes_of(_join([
            _const(rows, _FEATURE), _varint_rows(length.astype(np.uint64)), *pieces
        ]))

    header = _string(1, object_id_field) + _message(2, _string(1, object_id_field) + _uint(2, 1))
    header += _uint(7, GEOMETRY_TYPES[geometry_type] if geometry_type else GEOMETRY_TYPE_NONE)
    if spatial_reference:
        header += _message(8, _spatial_reference(spatial_reference))
    if exceeded_transfer_limit:
        header += _uint(9, 1)
    if transform is not None:
        header += _message(12, _transform(transform))
    header += b"".join(_message(13, _field(field)) for field in fields)
    body_length = len(header) + len(features)
    feature_result_key = _varint(1 << 3 | 2) + _varint(body_length)
    query_result_length = len(feature_result_key) + body_length
    head = _string(1, VERSION) + _varint(2 << 3 | 2) + _varint(query_result_length)
    return b"".join((head, feature_result_key, header, features))


def count_result(count: int) -> bytes:
    """returnCountOnly: CountResult{count}."""
    return _envelope(_message(2, _uint(1, count)))


def object_ids_result(object_id_field: str, ids: np.ndarray | pa.Array | pa.ChunkedArray) -> bytes:
    """returnIdsOnly: ObjectIdsResult{objectIdFieldName, packed objectIds}."""
    if isinstance(ids, pa.ChunkedArray | pa.Array):
        array = _combined(ids)
        if array.null_count:
            raise ValueError("object ids must not be null")
        ids = array.to_numpy(zero_copy_only=False)
    ids = np.asarray(ids)
    if len(ids) and ids.min() < 0:
        raise ValueError("object ids must not be negative")
    message = _string(1, object_id_field)
    if len(ids):
        data, _ = _varints(ids.astype(np.uint64))
        message += _varint(3 << 3 | 2) + _varint(len(data)) + data.tobytes()
    return _envelope(_message(3, message))


def extent_count_result(
    extent: tuple[float, float, float, float] | None,
    spatial_reference: Mapping[str, Any],
    count: int | None,
) -> bytes:
    """returnExtentOnly (optionally with the count): ExtentCountResult{extent, count}."""
    message = b""
    if extent is not None:
        xmin, ymin, xmax, ymax = extent
        message += _message(1, _double(1, xmin) + _double(2, ymin) + _double(3, xmax)
                            + _double(4, ymax) + _message(5, _spatial_reference(spatial_reference)))
    if count is not None:
        message += _uint(2, count)
    return _envelope(_message(4, message))
