"""The f=pbf encoder alone: milliseconds per encode of a large page, in process.

    .venv/bin/python bench/pbf_encode.py            # both shapes
    REPEAT=30 .venv/bin/python bench/pbf_encode.py points

Shapes (seeded): 100,000 points and 20,000 polygons of 40-60 vertices (a tenth with a hole),
each with six attribute columns as the query engine hands them over: OID (int64), an Integer
(int32), a Double, a String (5% null), a DuckDB ENUM (dictionary<string>, 8 values) and a Date
(timestamp[ms]). Geometries are already on the integer grid (quantization is not timed).
Prints the median and best of REPEAT encodes and the answer's size.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from koop_app.encoders.pbf import Parts, PbfField, Transform, feature_result  # noqa: E402

REPEAT = int(os.environ.get("REPEAT", "15"))
FIELDS = [
    PbfField("OBJECTID", "esriFieldTypeOID", "OBJECTID", "sqlTypeInteger"),
    PbfField("count", "esriFieldTypeInteger", "count", "sqlTypeInteger"),
    PbfField("value", "esriFieldTypeDouble", "value", "sqlTypeDouble"),
    PbfField("name", "esriFieldTypeString", "name", "sqlTypeNVarchar"),
    PbfField("kind", "esriFieldTypeString", "kind", "sqlTypeNVarchar"),
    PbfField("seen", "esriFieldTypeDate", "seen", "sqlTypeTimestamp2"),
]
TRANSFORM = Transform("upperLeft", (1e-6, 1e-6), (-180.0, 90.0))


def columns(rows: int, rng: np.random.Generator) -> list[pa.Array]:
    names = np.array([f"feature {i}" for i in range(rows)], dtype=object)
    names[rng.random(rows) < 0.05] = None
    kinds = ["park", "school", "road", "river", "lake", "shop", "farm", "forest"]
    return [
        pa.array(np.arange(1, rows + 1, dtype=np.int64)),
        pa.array(rng.integers(-100_000, 100_000, rows, dtype=np.int32)),
        pa.array(rng.normal(0, 1000, rows)),
        pa.array(names, pa.string()),
        pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, 8, rows, dtype=np.int8)),
                                       pa.array(kinds)),
        pa.array(rng.integers(0, 1_700_000_000_000, rows), pa.timestamp("ms")),
    ]


def points(rows: int, rng: np.random.Generator) -> Parts:
    coords = rng.integers(0, 360_000_000, (rows, 2), dtype=np.int64)
    return Parts(coords, np.ones(rows, np.int64), np.arange(rows + 1, dtype=np.int64))


def polygons(rows: int, rng: np.random.Generator) -> Parts:
    rings_per = np.where(rng.random(rows) < 0.1, 2, 1)
    lengths = rng.integers(40, 61, int(rings_per.sum()))
    coords = rng.integers(-500, 500, (int(lengths.sum()), 2), dtype=np.int64)  # deltas
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    coords[starts] = rng.integers(0, 360_000_000, (len(starts), 2))  # absolute first vertices
    return Parts(coords, lengths.astype(np.int64),
                 np.concatenate([[0], np.cumsum(rings_per)]).astype(np.int64))


def run(label: str, rows: int, geometry_type: str, geometry: Parts, cols: list[pa.Array]) -> None:
    def encode() -> bytes:
        return feature_result(fields=FIELDS, columns=cols, object_id_field="OBJECTID",
                              geometry_type=geometry_type, spatial_reference={"wkid": 4326},
                              transform=TRANSFORM, geometry=geometry)

    size = len(encode())  # warm up
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        encode()
        times.append((time.perf_counter() - start) * 1000)
    print(f"{label:<34} median {statistics.median(times):7.1f} ms   best {min(times):7.1f} ms"
          f"   {size / 1e6:6.2f} MB   ({REPEAT} runs)")


def main() -> None:
    wanted = set(sys.argv[1:]) or {"points", "polygons"}
    rng = np.random.default_rng(10)
    if "points" in wanted:
        run("100,000 points x 6 columns", 100_000, "esriGeometryPoint",
            points(100_000, rng), columns(100_000, rng))
    if "polygons" in wanted:
        shapes = polygons(20_000, rng)
        label = f"20,000 polygons ({len(shapes.coords) / 20_000:.0f} vertices) x 6"
        run(label, 20_000, "esriGeometryPolygon", shapes, columns(20_000, rng))


if __name__ == "__main__":
    main()
