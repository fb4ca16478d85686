"""Where clauses on text, in-process: the engine's time for a count, per clause shape.

    flock /work/wt/heavy.lock .venv/bin/python bench/where_strings.py            # 1M points
    BIG_COUNT=10000000 ONLY=category flock /work/wt/heavy.lock .venv/bin/python bench/...
    PYTHONPATH=/work/main ... bench/where_strings.py      # the same clauses on another checkout

Builds a layer like the reference's points (``category``: 10 weighted values, kept as an ENUM
as normalize decides past 10,000 rows; ``name``: "Adjective Noun n", text; ``value`` 0..1000
with 5% NULL) straight into a hot table (no GeoJSON), then times ``parse_query`` + ``run`` of a
returnCountOnly query (median wall and CPU milliseconds of SAMPLES after a warm-up; CPU counts
DuckDB's threads and moves less with the machine's load; the compiled clause is remembered, as
in a server) with text compared without case (the default) and with case (the switch, and the
only behaviour before issue 10).
"""

from __future__ import annotations

import inspect
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
COUNT = int(os.environ.get("BIG_COUNT", "1000000"))
SAMPLES = int(os.environ.get("SAMPLES", "15"))
CATEGORIES = ["Park", "School", "Hospital", "Library", "Museum", "Restaurant", "Store",
              "Station", "Church", "Office"]
WEIGHTS = [20, 15, 5, 8, 4, 18, 14, 7, 5, 4]
ADJECTIVES = ["Quiet", "North", "South", "Old", "New", "Green", "Red", "Lone", "Silver",
              "Golden", "Cedar", "Maple", "Pine", "Oak", "River", "Lake", "Hill", "Valley",
              "O'Hare", "St. Mary's"]
NOUNS = ["River", "Creek", "Ridge", "Point", "Grove", "Springs", "Harbor", "Heights"]
NAMES_IN = ", ".join("'" + f"{a} {n} {i}".replace("'", "''") + "'"
                     for a, n, i in zip(ADJECTIVES * 3, NOUNS * 8, range(50), strict=False))
SHAPES = {
    "category = 'Park' AND value > 500": "category = 'Park' AND value > 500",
    "category IN ('Park','School') AND value > 100":
        "category IN ('Park','School') AND value > 100",
    "category IN (5 values)": "category IN ('Park','School','Store','Office','Museum')",
    "category = 'park' (lower case)": "category = 'park'",
    "name = 'Oak River 17'": "name = 'Oak River 17'",
    "name LIKE 'North%'": "name LIKE 'North%'",
    "name LIKE 'North%' AND category IN (..)":
        "name LIKE 'North%' AND category IN ('Park','School')",
    "name LIKE '%River 1%'": "name LIKE '%River 1%'",
    "name IN (50 values)": f"name IN ({NAMES_IN})",
    "600 ORed equalities on name": " OR ".join(f"name = 'Oak River {i}'" for i in range(600)),
    "value > 500 (no text)": "value > 500",
}


def setup() -> None:
    var = Path(tempfile.mkdtemp(prefix="where-bench-"))
    os.environ.update({"DJANGO_SETTINGS_MODULE": "koopsite.settings", "KOOP_VAR_DIR": str(var),
                       "KOOP_DATA_DIR": str(var / "data"), "KOOP_HOT_DIR": "off",
                       "DJANGO_DEBUG": "0", "KOOP_LOG_LEVEL": "WARNING",
                       "CELERY_BROKER_URL": "memory://"})
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    import django

    django.setup()


def layer():  # -> LayerTable
    import pyarrow as pa

    from koop_app.data.hot import hot_tables
    from koop_app.data.schema import DOUBLE, OID, STRING, Field, LayerSchema

    rng = np.random.default_rng(7)
    x = rng.uniform(-125, -66, COUNT)
    y = rng.uniform(24, 50, COUNT)
    wkb = np.zeros(COUNT, dtype=[("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])
    wkb["order"], wkb["type"], wkb["x"], wkb["y"] = 1, 1, x, y
    geometry = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(21), COUNT, [None, pa.py_buffer(wkb.tobytes())]).cast(pa.binary())
    weights = np.array(WEIGHTS, dtype=float) / sum(WEIGHTS)
    category = np.array(CATEGORIES, dtype=object)[rng.choice(10, COUNT, p=weights)]
    category[rng.random(COUNT) < 0.02] = None
    adjective = np.array(ADJECTIVES, dtype=object)[rng.integers(0, 20, COUNT)]
    noun = np.array(NOUNS, dtype=object)[rng.integers(0, 8, COUNT)]
    number = rng.integers(0, 100, COUNT).astype(str).astype(object)
    name = adjective + " " + noun + " " + number
    name[rng.random(COUNT) < 0.03] = None
    value = np.round(rng.uniform(0, 1000, COUNT), 3)
    table = pa.table({
        "OBJECTID": pa.array(np.arange(1, COUNT + 1)), "name": pa.array(name, pa.string()),
        "category": pa.array(category, pa.string()),
        "value": pa.array(value, mask=rng.random(COUNT) < 0.05),
        "_koop_geom": geometry, "_koop_xmin": x, "_koop_ymin": y, "_koop_xmax": x,
        "_koop_ymax": y})
    schema = LayerSchema(
        fields=(Field("OBJECTID", OID, "OBJECTID"), Field("name", STRING, "name", 256),
                Field("category", STRING, "category", 256, enum_values=tuple(sorted(CATEGORIES))),
                Field("value", DOUBLE, "value")),
        object_id_field="OBJECTID", geometry_type="esriGeometryPoint",
        extent=(-125.0, 24.0, -66.0, 50.0), metadata={"name": "points"})
    return hot_tables.put("where-bench", "v1", table, schema, time.time(), shared=False)


def main() -> None:
    setup()
    from koop_app.query import RecordLimits, parse_query, run

    started = time.perf_counter()
    table = layer()
    print(f"{COUNT:,} points loaded in {time.perf_counter() - started:.1f} s "
          f"({Path(sys.modules['koop_app'].__file__).parent.parent})")
    limits = RecordLimits(2000, 2000, 2000)
    modes = [("without case", {"case_sensitive": False}), ("with case", {"case_sensitive": True})]
    if "case_sensitive" not in inspect.signature(parse_query).parameters:
        modes = [("before issue 10", {})]
    print("| clause | " + " | ".join(f"{name}: ms / CPU ms | count" for name, _ in modes) + " |")
    only = os.environ.get("ONLY", "")  # run the shapes whose label holds this text
    for label, clause in SHAPES.items():
        if only not in label:
            continue
        cells = []
        for _, keywords in modes:
            params = {"where": clause, "returnCountOnly": "true"}

            def once(params=params, keywords=keywords) -> int:
                return run(parse_query(params, table.schema, **keywords), table, limits).count

            count = once()
            times, cpu = [], []
            for _ in range(SAMPLES):
                clock, used = time.perf_counter(), time.process_time()
                once()
                times.append((time.perf_counter() - clock) * 1000)
                cpu.append((time.process_time() - used) * 1000)
            cells.append(f"{statistics.median(times):.1f} / {statistics.median(cpu):.1f} | "
                         f"{count:,}")
        print(f"| `{label}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
