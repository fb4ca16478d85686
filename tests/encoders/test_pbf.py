"""The f=pbf encoder, read back by decoders that are not ours.

One node process (tests/encoders/pbf_node/decode.mjs) serves the session: protobufjs decodes
every field with our .proto, arcgis-pbf-parser makes GeoJSON, and the ArcGIS Maps SDK's own
parser makes Esri JSON in world coordinates. Integers must come back exactly, floats bit for bit.
"""

from __future__ import annotations

import base64
import math
import struct
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from koop_app.encoders import pbf
from koop_app.encoders.pbf import Parts, PbfField, Transform

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = Path(__file__).resolve().parent / "pbf_node"
PROTO = ROOT / "koop_app" / "encoders" / "FeatureCollection.proto"
ARCGIS_CORE = ROOT / "tests" / "clients" / "arcgis_js" / "node_modules" / "@arcgis" / "core"

UPPER = Transform("upperLeft", (0.5, 0.25), (-180.0, 90.0))
LOWER = Transform("lowerLeft", (0.25, 0.125), (1000.0, -50.0))
WGS84 = {"wkid": 4326, "latestWkid": 4326}
OID = PbfField("OBJECTID", "esriFieldTypeOID", "OBJECTID", "sqlTypeInteger")


class Decoders:
    """The node process: one base64 answer per line in, one JSON line out."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            ["node", str(NODE_DIR / "decode.mjs"), str(PROTO), "--sdk", str(ARCGIS_CORE)],
            cwd=NODE_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    def __call__(self, data: bytes) -> dict[str, Any]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(base64.b64encode(data).decode() + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"decode.mjs stopped (exit {self.process.poll()})"
        decoded = orjson.loads(line)
        for name, result in decoded.items():
            assert not (isinstance(result, dict) and "error" in result), (name, result)
        return decoded

    def close(self) -> None:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.close()
        self.process.wait(timeout=30)
        self.process.stdout.close()


@pytest.fixture(scope="session")
def decode() -> Iterator[Decoders]:
    for folder in (NODE_DIR, ARCGIS_CORE.parents[1].parent):
        if not (folder / "node_modules").is_dir():
            pytest.fail(f"npm packages missing: run scripts/ensure-npm {folder.relative_to(ROOT)}")
    decoders = Decoders()
    yield decoders
    decoders.close()


# --- building inputs and expectations -------------------------------------------------------------

def quantize(features: Sequence[Sequence[Sequence[tuple[float, float]]] | None],
             transform: Transform) -> Parts:
    """World-coordinate parts -> grid Parts: per part the first vertex absolute, then deltas."""
    (sx, sy), (tx, ty) = transform.scale, transform.translate
    coords: list[tuple[int, int]] = []
    lengths: list[int] = []
    offsets = [0]
    for parts in features:
        for part in parts or ():
            down = transform.origin == "upperLeft"
            grid = [(round((x - tx) / sx), round((ty - y) / sy if down else (y - ty) / sy))
                    for x, y in part]
            coords += grid[:1] + [(x - px, y - py)
                                  for (px, py), (x, y) in zip(grid, grid[1:], strict=False)]
            lengths.append(len(part))
        offsets.append(len(lengths))
    return Parts(np.array(coords, np.int64).reshape(-1, 2), np.array(lengths, np.int64),
                 np.array(offsets, np.int64))


def raw_geometries(parts: Parts, points: bool = False) -> list[dict[str, list[int]] | None]:
    """What the wire holds per feature: lengths and (delta) coords, or no geometry."""
    out: list[dict[str, list[int]] | None] = []
    vertex = np.concatenate([[0], np.cumsum(parts.part_lengths)])
    for start, end in zip(parts.feature_parts, parts.feature_parts[1:], strict=False):
        if start == end:
            out.append(None)
            continue
        lengths = [int(n) for n in parts.part_lengths[start:end]]
        coords = [int(c) for c in parts.coords[vertex[start]:vertex[end]].reshape(-1)]
        out.append({"lengths": [] if points else lengths, "coords": coords})
    return out


def float_bits(kind: str, value: float) -> int:
    if kind == "float_value":
        return struct.unpack("<I", struct.pack("<f", value))[0]
    return struct.unpack("<Q", struct.pack("<d", value))[0]


def wire_value(value: dict[str, Any]) -> tuple[str, Any] | None:
    """A decoded Value as (member, value) with floats as bit patterns; None when empty."""
    kind = value.get("value_type")
    if kind is None:
        return None
    raw = value[kind]
    if kind in ("float_value", "double_value"):
        return kind, float_bits(kind, float(raw))
    if kind in ("string_value", "bool_value"):
        return kind, raw
    return kind, int(raw)


def expected_column(field_type: str, values: Sequence[Any]) -> list[tuple[str, Any] | None]:
    """The Value members a column should become (the encoder's rules, restated)."""
    present = [v for v in values if v is not None]
    if field_type in ("esriFieldTypeSmallInteger", "esriFieldTypeInteger"):
        kind = "sint_value" if all(-(2**31) <= v < 2**31 for v in present) else "sint64_value"
    elif field_type == "esriFieldTypeOID":
        kind = "uint_value" if all(v < 2**32 for v in present) else "uint64_value"
    elif field_type in ("esriFieldTypeBigInteger", "esriFieldTypeDate"):
        kind = "sint64_value"
    elif field_type == "esriFieldTypeSingle":
        kind = "float_value"
    elif field_type == "esriFieldTypeDouble":
        kind = "double_value"
    else:
        kind = "string_value"
    out: list[tuple[str, Any] | None] = []
    for value in values:
        if value is None or (kind in ("float_value", "double_value") and not math.isfinite(value)):
            out.append(None)
        elif kind in ("float_value", "double_value"):
            out.append((kind, float_bits(kind, value)))
        else:
            out.append((kind, int(value) if not isinstance(value, str) else value))
    return out


def feature_result(decoded: dict[str, Any]) -> dict[str, Any]:
    result = decoded["protobufjs"]["queryResult"]
    assert result["Results"] == "featureResult"
    return result["featureResult"]


def attribute_rows(result: dict[str, Any]) -> list[list[tuple[str, Any] | None]]:
    return [[wire_value(v) for v in feature["attributes"]] for feature in result["features"]]


def geometries(result: dict[str, Any], key: str = "geometry") -> list[dict[str, list[int]] | None]:
    out: list[dict[str, list[int]] | None] = []
    for feature in result["features"]:
        geometry = feature.get(key)
        out.append(None if geometry is None else {
            "lengths": [int(n) for n in geometry["lengths"]],
            "coords": [int(c) for c in geometry["coords"]],
        })
    return out


def encode(**overrides: Any) -> bytes:
    arguments: dict[str, Any] = {
        "fields": [OID], "columns": [pa.array([1])], "object_id_field": "OBJECTID",
        "geometry_type": None, "spatial_reference": WGS84, "transform": None, "geometry": None,
    }
    arguments.update(overrides)
    return pbf.feature_result(**arguments)


def sdk_parts(geometry: dict[str, Any] | None) -> list[list[tuple[float, float]]] | None:
    """Esri JSON from the SDK as a list of parts of (x, y)."""
    if geometry is None:
        return None
    if "x" in geometry:
        return [[(geometry["x"], geometry["y"])]]
    for key in ("points", "paths", "rings"):
        if key in geometry:
            parts = [geometry[key]] if key == "points" else geometry[key]
            return [[(x, y) for x, y, *_ in part] for part in parts]
    raise AssertionError(f"unexpected SDK geometry {geometry}")


def geojson_parts(geometry: dict[str, Any] | None) -> list[list[tuple[float, float]]] | None:
    if geometry is None:
        return None
    coordinates = geometry["coordinates"]
    kind = geometry["type"]
    if kind == "Point":
        return [[tuple(coordinates)]]
    if kind in ("LineString",):
        return [[tuple(c) for c in coordinates]]
    if kind in ("MultiLineString", "Polygon"):
        return [[tuple(c) for c in part] for part in coordinates]
    if kind == "MultiPolygon":
        return [[tuple(c) for c in ring] for polygon in coordinates for ring in polygon]
    raise AssertionError(f"unexpected GeoJSON {geometry}")


def approx_parts(parts: Sequence[Sequence[tuple[float, float]]] | None) -> Any:
    if parts is None:
        return None
    return [[pytest.approx(xy, rel=1e-12, abs=1e-9) for xy in part] for part in parts]


def walk(message: bytes) -> list[tuple[int, int, bytes | int]]:
    """The top-level fields of a message: (number, wire type, payload)."""
    fields: list[tuple[int, int, bytes | int]] = []
    position = 0

    def varint() -> int:
        nonlocal position
        shift = result = 0
        while True:
            byte = message[position]
            position += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return result

    while position < len(message):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields.append((number, wire, varint()))
        elif wire == 2:
            size = varint()
            fields.append((number, wire, message[position:position + size]))
            position += size
        else:
            size = 8 if wire == 1 else 4
            fields.append((number, wire, message[position:position + size]))
            position += size
    return fields


def wire_feature_result(data: bytes) -> bytes:
    (query_result,) = [p for n, _, p in walk(data) if n == 2]
    assert isinstance(query_result, bytes)
    ((number, _, result),) = walk(query_result)
    assert number == 1 and isinstance(result, bytes)
    return result


# --- geometries -----------------------------------------------------------------------------------

POINTS = [[[(10.5, 20.25)]], None, [[(-180.0, 90.0)]], [[(179.5, -89.75)]], []]
MULTIPOINTS = [[[(0.0, 0.0), (1.0, 1.0), (-3.5, 2.25)]], [[(5.0, 5.0)]], None]
POLYLINES = [
    [[(0.0, 0.0), (10.0, 10.0), (20.0, 5.0)]],
    [[(1.0, 1.0), (2.0, 2.0)], [(-1.0, -1.0), (-2.0, -2.0), (-3.0, 1.0)]],
    None,
]
# Esri rings: outer rings clockwise, holes counter-clockwise (in world coordinates).
SQUARE = [(0.0, 0.0), (0.0, 10.0), (10.0, 10.0), (10.0, 0.0), (0.0, 0.0)]
HOLE = [(2.0, 2.0), (4.0, 2.0), (4.0, 4.0), (2.0, 4.0), (2.0, 2.0)]
FAR = [(100.0, 40.0), (100.0, 50.0), (110.0, 50.0), (110.0, 40.0), (100.0, 40.0)]
POLYGONS = [[SQUARE], [SQUARE, HOLE], [SQUARE, HOLE, FAR], None, []]

GEOMETRY_CASES = [
    ("esriGeometryPoint", POINTS),
    ("esriGeometryMultipoint", MULTIPOINTS),
    ("esriGeometryPolyline", POLYLINES),
    ("esriGeometryPolygon", POLYGONS),
]


@pytest.mark.parametrize("transform", [UPPER, LOWER], ids=["upperLeft", "lowerLeft"])
@pytest.mark.parametrize(("geometry_type", "shapes"), GEOMETRY_CASES,
                         ids=[case[0] for case in GEOMETRY_CASES])
def test_geometries_round_trip(decode, geometry_type, shapes, transform):
    parts = quantize(shapes, transform)
    ids = pa.array(range(1, len(shapes) + 1))
    decoded = decode(encode(columns=[ids], geometry_type=geometry_type, transform=transform,
                            geometry=parts))
    result = feature_result(decoded)
    points = geometry_type == "esriGeometryPoint"
    assert geometries(result) == raw_geometries(parts, points)
    assert result["geometryType"] == geometry_type.replace("esriGeometry", "esriGeometryType")
    assert result["transform"] == {
        "quantizeOriginPostion": transform.origin,
        "scale": {"xScale": transform.scale[0], "yScale": transform.scale[1],
                  "mScale": 0, "zScale": 0},
        "translate": {"xTranslate": transform.translate[0], "yTranslate": transform.translate[1],
                      "mTranslate": 0, "zTranslate": 0},
    }
    # The SDK undoes the deltas and the transform, honouring either origin.
    sdk = decoded["sdk"]
    assert sdk["geometryType"] == geometry_type
    expected = [None if not shape else [list(part) for part in shape] for shape in shapes]
    assert [sdk_parts(f.get("geometry")) for f in sdk["features"]] == [
        approx_parts(shape) for shape in expected]
    # arcgis-pbf-parser always flips y: it only reads upperLeft grids.
    if transform.origin == "upperLeft" and geometry_type != "esriGeometryMultipoint":
        features = decoded["geojson"]["featureCollection"]["features"]
        assert [geojson_parts(f["geometry"]) for f in features] == [
            approx_parts(shape) for shape in expected]


def test_points_carry_coords_only(decode):
    """As ArcGIS Server writes them: Geometry{coords: [x, y]}, no lengths field at all."""
    data = encode(columns=[pa.array([1, 2])], geometry_type="esriGeometryPoint", transform=UPPER,
                  geometry=quantize([[[(1.0, 2.0)]], None], UPPER))
    features = [p for n, _, p in walk(wire_feature_result(data)) if n == 15]
    first, second = (walk(f) for f in features)
    (geometry,) = [p for n, _, p in first if n == 2]
    assert [n for n, _, _ in walk(geometry)] == [3]
    assert [n for n, _, _ in second] == [1]  # a null geometry: no geometry field


def test_polygon_holes_in_geojson(decode):
    data = encode(columns=[pa.array([1, 2])], geometry_type="esriGeometryPolygon",
                  transform=UPPER, geometry=quantize([[SQUARE, HOLE], [SQUARE, HOLE, FAR]], UPPER))
    features = decode(data)["geojson"]["featureCollection"]["features"]
    # Rings grouped by orientation: one polygon with its hole, then a second polygon.
    assert [len(polygon) for polygon in features[0]["geometry"]["coordinates"]] == [2]
    assert [len(polygon) for polygon in features[1]["geometry"]["coordinates"]] == [2, 1]


def test_large_and_negative_grid_coordinates(decode):
    big = 2**40
    parts = Parts(np.array([[big, -big], [-1, 1], [2**52, -(2**52)], [0, 0]], np.int64),
                  np.array([2, 2], np.int64), np.array([0, 2], np.int64))
    decoded = decode(encode(geometry_type="esriGeometryPolyline", transform=UPPER,
                            geometry=parts))
    assert geometries(feature_result(decoded)) == raw_geometries(parts)


def test_centroids(decode):
    shapes = [[SQUARE], None, [SQUARE, HOLE]]
    centroids = quantize([[[(5.0, 5.0)]], None, [[(5.5, 6.25)]]], UPPER)
    decoded = decode(encode(columns=[pa.array([1, 2, 3])], geometry_type="esriGeometryPolygon",
                            transform=UPPER, geometry=quantize(shapes, UPPER),
                            centroids=centroids))
    assert geometries(feature_result(decoded), "centroid") == raw_geometries(centroids, True)
    sdk = decoded["sdk"]["features"]
    assert [sdk_parts(f.get("centroid")) for f in sdk] == [[[(5.0, 5.0)]], None, [[(5.5, 6.25)]]]


def test_table_without_geometry(decode):
    decoded = decode(encode(columns=[pa.array([1, 2])], spatial_reference={}))
    result = feature_result(decoded)
    assert result["geometryType"] == "esriGeometryTypeNone"
    assert geometries(result) == [None, None]
    assert result["transform"] is None
    assert decoded["sdk"]["geometryType"] is None


# --- attributes -----------------------------------------------------------------------------------

def field(name: str, kind: str, sql: str = "sqlTypeOther") -> PbfField:
    return PbfField(name, f"esriFieldType{kind}", name.upper(), sql)


def test_every_attribute_type(decode):
    big_oid = 2**40 + 7
    columns = {
        field("oid", "OID", "sqlTypeInteger"): pa.array([big_oid, 1, 0], pa.int64()),
        field("small", "SmallInteger", "sqlTypeSmallInt"): pa.array([-32768, None, 32767],
                                                                     pa.int16()),
        field("flag", "SmallInteger"): pa.array([True, False, None]),
        field("int", "Integer", "sqlTypeInteger"): pa.array([-(2**31), 2**31 - 1, None],
                                                            pa.int32()),
        field("wide", "Integer"): pa.array([2**31, -5, None], pa.int64()),
        field("big", "BigInteger", "sqlTypeBigInt"): pa.array([-(2**63), 2**63 - 1, None],
                                                             pa.int64()),
        field("single", "Single", "sqlTypeFloat"): pa.array([1.1, -0.0, None], pa.float32()),
        field("single64", "Single"): pa.array([3.3, float("inf"), 1e-45], pa.float64()),
        field("double", "Double", "sqlTypeDouble"): pa.array([math.pi, float("nan"), -0.0]),
        field("text", "String", "sqlTypeNVarchar"): pa.array(["", "Zürich 東京 🗺️", None]),
        field("long", "String"): pa.array(["x" * 300, None, "y"], pa.large_string()),
        field("enum", "String"): pa.array(["a", None, "b"]).dictionary_encode(),
        field("guid", "GUID", "sqlTypeGUID"): pa.array(["{0F0E}", None, "{ABCD}"]),
        field("global", "GlobalID", "sqlTypeGUID"): pa.array(["{1}", "{2}", None]),
        field("xml", "XML", "sqlTypeSqlXml"): pa.array(["<a/>", None, None]),
        field("date_ms", "Date", "sqlTypeTimestamp2"): pa.array([0, -86_400_001, None],
                                                                pa.int64()),
        field("stamp", "Date"): pa.array([-1, 1_700_000_000_123, None], pa.timestamp("ms", "UTC")),
        field("stamp_us", "Date"): pa.array([-1_500, 2_000_999, None], pa.timestamp("us")),
        field("stamp_ns", "Date"): pa.array([-(10**15), 10**6, None], pa.timestamp("ns")),
        field("stamp_s", "Date"): pa.array([-1, 1, None], pa.timestamp("s")),
        field("day", "Date"): pa.array([-1, 0, None], pa.date32()),
    }
    decoded = decode(encode(fields=list(columns), columns=list(columns.values()),
                            object_id_field="oid"))
    result = feature_result(decoded)
    expected = [
        [("uint64_value", big_oid), ("uint64_value", 1), ("uint64_value", 0)],
        [("sint_value", -32768), None, ("sint_value", 32767)],
        [("sint_value", 1), ("sint_value", 0), None],
        [("sint_value", -(2**31)), ("sint_value", 2**31 - 1), None],
        [("sint64_value", 2**31), ("sint64_value", -5), None],
        [("sint64_value", -(2**63)), ("sint64_value", 2**63 - 1), None],
        expected_column("esriFieldTypeSingle", [float(np.float32(1.1)), -0.0, None]),
        [("float_value", float_bits("float_value", float(np.float32(3.3)))), None,
         ("float_value", float_bits("float_value", float(np.float32(1e-45))))],
        [("double_value", float_bits("double_value", math.pi)), None,
         ("double_value", float_bits("double_value", -0.0))],
        [("string_value", ""), ("string_value", "Zürich 東京 🗺️"), None],
        [("string_value", "x" * 300), None, ("string_value", "y")],
        [("string_value", "a"), None, ("string_value", "b")],
        [("string_value", "{0F0E}"), None, ("string_value", "{ABCD}")],
        [("string_value", "{1}"), ("string_value", "{2}"), None],
        [("string_value", "<a/>"), None, None],
        [("sint64_value", 0), ("sint64_value", -86_400_001), None],
        [("sint64_value", -1), ("sint64_value", 1_700_000_000_123), None],
        [("sint64_value", -2), ("sint64_value", 2_000), None],  # floored to milliseconds
        [("sint64_value", -(10**9)), ("sint64_value", 1), None],
        [("sint64_value", -1000), ("sint64_value", 1000), None],
        [("sint64_value", -86_400_000), ("sint64_value", 0), None],
    ]
    assert [list(row) for row in zip(*attribute_rows(result), strict=True)] == expected
    assert [(f["name"], f["fieldType"], f["alias"], f["sqlType"]) for f in result["fields"]] == [
        (f.name, f.type, f.alias, f.sql_type) for f in columns]
    assert result["objectIdFieldName"] == "oid"
    assert result["uniqueIdField"] == {"name": "oid", "isSystemMaintained": True}
    # The SDK reads every attribute by the field at its position.
    sdk = decoded["sdk"]["features"]
    assert sdk[1]["attributes"]["text"] == "Zürich 東京 🗺️"
    assert sdk[0]["attributes"]["small"] == -32768 and sdk[1]["attributes"]["small"] is None
    assert sdk[0]["attributes"]["oid"] == big_oid and sdk[1]["attributes"]["day"] == 0
    assert sdk[0]["attributes"]["enum"] == "a" and sdk[1]["attributes"]["enum"] is None


def test_chunked_and_dictionary_columns(decode):
    chunked = pa.chunked_array([pa.array([1, 2]), pa.array([3])])
    words = pa.chunked_array([pa.array(["x", "y"]).dictionary_encode(),
                              pa.array(["y", None]).dictionary_encode()])
    codes = pa.DictionaryArray.from_arrays(pa.array([0, None, 1], pa.int8()),
                                           pa.array(["ü", None]))
    fields = [OID, field("w", "String"), field("c", "String")]
    decoded = decode(encode(fields=fields, columns=[chunked, words.slice(1), codes]))
    assert attribute_rows(feature_result(decoded)) == [
        [("uint_value", 1), ("string_value", "y"), ("string_value", "ü")],
        [("uint_value", 2), ("string_value", "y"), None],
        [("uint_value", 3), None, None],
    ]


def test_columns_take_their_field_type(decode):
    """The field type decides the Value member; the Arrow type is only where it comes from."""
    columns = {
        field("double", "Double"): pa.array([1, None], pa.int32()),
        field("text", "String"): pa.array([12, -3], pa.int64()),
        field("int", "Integer"): pa.array([2.0, -7.0]),
        field("coded", "Integer"): pa.DictionaryArray.from_arrays(pa.array([1, 0]),
                                                                  pa.array([10, 20], pa.int16())),
        field("day", "Date"): pa.array([86_400_000, None], pa.date64()),
    }
    decoded = decode(encode(fields=list(columns), columns=list(columns.values()),
                            object_id_field="none"))
    assert attribute_rows(feature_result(decoded)) == [
        [("double_value", float_bits("double_value", 1.0)), ("string_value", "12"),
         ("sint_value", 2), ("sint_value", 20), ("sint64_value", 86_400_000)],
        [None, ("string_value", "-3"), ("sint_value", -7), ("sint_value", 10), None],
    ]


def test_sliced_inputs(decode):
    ids = pa.array(range(10)).slice(4, 3)
    names = pa.array([str(i) * i for i in range(10)]).slice(4, 3)
    decoded = decode(encode(fields=[OID, field("n", "String")], columns=[ids, names]))
    assert attribute_rows(feature_result(decoded)) == [
        [("uint_value", i), ("string_value", str(i) * i)] for i in (4, 5, 6)]


def test_header(decode):
    data = encode(spatial_reference={"wkt": "PROJCS[\"x\"]"}, exceeded_transfer_limit=True,
                  geometry_type="esriGeometryPoint", transform=LOWER,
                  geometry=quantize([[[(1000.0, -50.0)]]], LOWER))
    decoded = decode(data)
    result = feature_result(decoded)
    assert decoded["protobufjs"]["version"] == pbf.VERSION
    assert result["exceededTransferLimit"] is True
    assert result["spatialReference"]["wkt"] == 'PROJCS["x"]'
    assert result["spatialReference"]["wkid"] == 0
    assert decoded["sdk"]["exceededTransferLimit"] is True
    assert decoded["geojson"]["exceededTransferLimit"] is True
    # Fields in the order of their numbers, as the specification lists them.
    numbers = [n for n, _, _ in walk(wire_feature_result(data))]
    assert numbers == sorted(numbers) == [1, 2, 7, 8, 9, 12, 13, 15]
    assert feature_result(decode(encode()))["exceededTransferLimit"] is False


def test_empty_page(decode):
    decoded = decode(encode(columns=[pa.array([], pa.int64())],
                            geometry_type="esriGeometryPolygon", transform=UPPER,
                            geometry=quantize([], UPPER)))
    result = feature_result(decoded)
    assert result["features"] == [] and len(result["fields"]) == 1
    assert decoded["sdk"]["features"] == []


# --- count, ids, extent ---------------------------------------------------------------------------

@pytest.mark.parametrize("count", [0, 1, 2**35])
def test_count(decode, count):
    result = decode(pbf.count_result(count))["protobufjs"]["queryResult"]
    assert result["Results"] == "countResult"
    assert int(result["countResult"]["count"]) == count


@pytest.mark.parametrize("ids", [
    np.array([], np.int64),
    np.array([1, 2, 3]),
    np.concatenate([np.arange(0, 200_000, 2), [2**32, 2**53 + 1, 2**63 - 1]]),
    pa.chunked_array([pa.array([5, 6], pa.int32()), pa.array([7], pa.int32())]),
    pa.array([2**64 - 1], pa.uint64()),
], ids=["empty", "small", "large", "arrow", "uint64"])
def test_object_ids(decode, ids):
    result = decode(pbf.object_ids_result("FID", ids))["protobufjs"]["queryResult"]
    assert result["Results"] == "idsResult"
    assert result["idsResult"]["objectIdFieldName"] == "FID"
    expected = ids.to_pylist() if isinstance(ids, pa.ChunkedArray | pa.Array) else ids.tolist()
    assert [int(i) for i in result["idsResult"]["objectIds"]] == expected


@pytest.mark.parametrize("count", [None, 0, 12])
@pytest.mark.parametrize("extent", [None, (-180.0, -90.0, 180.0, 90.0), (0.1, -0.0, 1e300, 5e-324)])
def test_extent(decode, extent, count):
    result = decode(pbf.extent_count_result(extent, {"wkid": 102100, "latestWkid": 3857}, count))
    result = result["protobufjs"]["queryResult"]
    assert result["Results"] == "extentCountResult"
    message = result["extentCountResult"]
    assert int(message["count"]) == (count or 0)
    if extent is None:
        assert message["extent"] is None
    else:
        envelope = message["extent"]
        got = [float(envelope[key]) for key in ("XMin", "YMin", "XMax", "YMax")]
        assert [float_bits("double_value", v) for v in got] == [
            float_bits("double_value", v) for v in extent]
        assert envelope["SpatialReference"]["wkid"] == 102100
        assert envelope["SpatialReference"]["latestWkid"] == 3857


# --- refusals -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("overrides", "message"), [
    ({"columns": [pa.array([1]), pa.array([2])]}, "2 columns for 1 fields"),
    ({"fields": [OID, field("x", "String")], "columns": [pa.array([1]), pa.array(["a", "b"])]},
     "differ in length"),
    ({"fields": [field("g", "Geometry")]}, "no PBF encoding"),
    ({"fields": [PbfField("x", "esriFieldTypeString", "x", "sqlTypeNope")],
      "columns": [pa.array(["a"])]}, "unknown SQL type"),
    ({"columns": [pa.array([-1])]}, "must not be negative"),
    ({"geometry_type": "esriGeometryCircle"}, "unknown geometry type"),
    ({"geometry_type": "esriGeometryPoint", "geometry": quantize([[[(0.0, 0.0)]]], UPPER)},
     "need their transform"),
    ({"transform": UPPER, "geometry": quantize([[[(0.0, 0.0)]]], UPPER)}, "without a geometry"),
    ({"geometry_type": "esriGeometryPoint", "transform": UPPER,
      "geometry": quantize([[[(0.0, 0.0), (1.0, 1.0)]]], UPPER)}, "one part of one vertex"),
    ({"geometry_type": "esriGeometryPolyline", "transform": UPPER,
      "geometry": quantize([None, None], UPPER)}, "3 offsets for 1 features"),
    ({"transform": Transform("middle", (1.0, 1.0), (0.0, 0.0))}, "unknown quantization origin"),
])
def test_refusals(overrides, message):
    with pytest.raises(ValueError, match=message):
        encode(**overrides)


# --- generated inputs -----------------------------------------------------------------------------

INT_TYPES = {"esriFieldTypeSmallInteger": (pa.int16(), -(2**15), 2**15 - 1),
             "esriFieldTypeInteger": (pa.int64(), -(2**33), 2**33),
             "esriFieldTypeBigInteger": (pa.int64(), -(2**63), 2**63 - 1),
             "esriFieldTypeOID": (pa.int64(), 0, 2**63 - 1)}
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


@st.composite
def columns(draw: Any, rows: int) -> tuple[PbfField, pa.Array, list[Any]]:
    """A field, its Arrow column and the values it should come back as."""
    field_type = draw(st.sampled_from([
        *INT_TYPES, "esriFieldTypeSingle", "esriFieldTypeDouble", "esriFieldTypeString",
        "esriFieldTypeGUID", "esriFieldTypeDate"]))
    maybe = (lambda values: st.one_of(st.none(), values)) if draw(st.booleans()) else (
        lambda values: values)
    if field_type in INT_TYPES:
        arrow_type, low, high = INT_TYPES[field_type]
        if draw(st.booleans()):  # mostly small values, sometimes the whole range
            low, high = max(low, -1000), min(high, 1000)
        values = draw(st.lists(maybe(st.integers(low, high)), min_size=rows, max_size=rows))
        array = pa.array(values, arrow_type)
    elif field_type == "esriFieldTypeSingle":
        values = draw(st.lists(maybe(st.floats(width=32)), min_size=rows, max_size=rows))
        array = pa.array(values, pa.float32())
    elif field_type == "esriFieldTypeDouble":
        values = draw(st.lists(maybe(st.floats()), min_size=rows, max_size=rows))
        array = pa.array(values, pa.float64())
    elif field_type == "esriFieldTypeDate":
        values = draw(st.lists(maybe(st.integers(-(2**62), 2**62)), min_size=rows,
                               max_size=rows))
        array = pa.array(values, draw(st.sampled_from([pa.int64(), pa.timestamp("ms")])))
    else:
        values = draw(st.lists(maybe(TEXT), min_size=rows, max_size=rows))
        array = pa.array(values, draw(st.sampled_from([pa.string(), pa.large_string()])))
        if draw(st.booleans()):
            array = array.dictionary_encode()
    name = draw(TEXT)
    return PbfField(name, field_type, draw(TEXT), "sqlTypeOther"), array, values


@st.composite
def shapes(draw: Any, rows: int, points: bool) -> Parts:
    counts = st.just(1) if points else st.integers(1, 4)
    coordinate = st.one_of(st.integers(-300, 300), st.integers(-(2**62), 2**62))
    lengths: list[int] = []
    offsets = [0]
    for _ in range(rows):
        if draw(st.booleans()) or not points:
            lengths += draw(st.lists(counts, max_size=1 if points else 3))
        offsets.append(len(lengths))
    coords = draw(st.lists(st.tuples(coordinate, coordinate), min_size=sum(lengths),
                           max_size=sum(lengths)))
    return Parts(np.array(coords, np.int64).reshape(-1, 2), np.array(lengths, np.int64),
                 np.array(offsets, np.int64))


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_generated_feature_results(decode, data):
    rows = data.draw(st.integers(0, 12))
    drawn = data.draw(st.lists(columns(rows), min_size=1, max_size=5))
    geometry_type = data.draw(st.sampled_from([None, *pbf.GEOMETRY_TYPES]))
    points = geometry_type == "esriGeometryPoint"
    parts = data.draw(shapes(rows, points)) if geometry_type else None
    centroids = data.draw(st.none() | shapes(rows, True)) if geometry_type else None
    transform = data.draw(st.sampled_from([UPPER, LOWER]))
    oid_name = data.draw(TEXT)
    encoded = pbf.feature_result(
        fields=[f for f, _, _ in drawn], columns=[a for _, a, _ in drawn],
        object_id_field=oid_name, geometry_type=geometry_type, spatial_reference=WGS84,
        transform=transform if geometry_type else None, geometry=parts, centroids=centroids,
        exceeded_transfer_limit=data.draw(st.booleans()))
    result = feature_result(decode(encoded))
    expected = [expected_column(f.type, values) for f, _, values in drawn]
    assert attribute_rows(result) == [list(row) for row in zip(*expected, strict=True)]
    assert [f["name"] for f in result["fields"]] == [f.name for f, _, _ in drawn]
    assert result["objectIdFieldName"] == oid_name
    if parts is not None:
        assert geometries(result) == raw_geometries(parts, points)
    if centroids is not None:
        assert geometries(result, "centroid") == raw_geometries(centroids, True)


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(st.integers(0, 2**64 - 1), max_size=50),
       count=st.none() | st.integers(0, 2**64 - 1),
       extent=st.none() | st.tuples(*[st.floats(allow_nan=False)] * 4))
def test_generated_ids_counts_extents(decode, ids, count, extent):
    result = decode(pbf.object_ids_result("id", np.array(ids, np.uint64)))
    assert [int(i) for i in result["protobufjs"]["queryResult"]["idsResult"]["objectIds"]] == ids
    if count is not None:
        result = decode(pbf.count_result(count))
        assert int(result["protobufjs"]["queryResult"]["countResult"]["count"]) == count
    result = decode(pbf.extent_count_result(extent, WGS84, count))
    message = result["protobufjs"]["queryResult"]["extentCountResult"]
    assert int(message["count"]) == (count or 0)
    if extent is not None:
        got = [float(message["extent"][k]) for k in ("XMin", "YMin", "XMax", "YMax")]
        assert [float_bits("double_value", v) for v in got] == [
            float_bits("double_value", v) for v in extent]
