"""10M points: generate, load straight into the data cache and a hot file, serve, measure.

    .venv/bin/python bench/points_10m.py generate   # $BIG_DIR/data/points_10m.geojson (2.6 GB)
    .venv/bin/python bench/points_10m.py load       # cache pointer + blob, and the hot file
    KOOP_HOT_ORDER=source .venv/bin/python bench/points_10m.py rebuild   # reordered (or hilbert)
    flock /work/wt/heavy.lock .venv/bin/python bench/points_10m.py serve   # c=1 medians

``generate`` runs the reference's gen_data.py (same shape as points_1m: one feature a line,
ids 1..N, lon -125..-66, lat 24..50) with 10,000,000 points. ``load`` is the direct path, not
``koop_refresh``: DuckDB reads the GeoJSON lines into the normalised columns (types taken from
normalize() on the first 20,000 features; category as an ENUM as normalize decides on the
whole column), then stores the pointer and the Arrow IPC blob as a refresh does and builds the
version's hot file. ``serve`` starts gunicorn (2 workers, 4 threads) on the hot file and prints
the c=1 median of each shape (SAMPLES requests each, after a warm-up). Loopback only.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REF = Path(os.environ.get("KOOP_REF", ROOT.parent / "shared" / "koop-reference"))
BIG = Path(os.environ.get("BIG_DIR", "/tmp/hot/big"))
NAME = "points_10m"
COUNT = int(os.environ.get("BIG_COUNT", "10000000"))
PORT = int(os.environ.get("PORT", "8420"))
SAMPLES = int(os.environ.get("SAMPLES", "21"))
SERVER = os.environ.get("SERVER", "-w 2 -k gthread --threads 4")


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "KOOP_", "REDIS_", "CELERY_", "DATABASE_"))}
    out.update({"DJANGO_SETTINGS_MODULE": "koopsite.settings", "KOOP_VAR_DIR": str(BIG / "var"),
                "KOOP_DATA_DIR": str(BIG / "data"), "DJANGO_DEBUG": "0",
                "KOOP_LOG_LEVEL": "WARNING", "CELERY_BROKER_URL": "memory://",
                "MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "65536"})
    for name in ("KOOP_DUCKDB_THREADS", "KOOP_DUCKDB_MEMORY_LIMIT", "KOOP_HOT_ORDER"):
        if os.environ.get(name):  # the settings being compared
            out[name] = os.environ[name]
    return out


def generate() -> None:
    sys.path.insert(0, str(REF))
    import gen_data

    gen_data.DATASETS[NAME] = ("Point", COUNT)
    gen_data.generate(NAME, str(BIG / "data"))


def load() -> None:
    os.environ.update(env())
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import orjson
    import pyarrow as pa
    import pyarrow.compute as pc
    from django.core.management import call_command

    from koop_app.data import cache, duck, overrides_of
    from koop_app.data.arrowio import write_ipc
    from koop_app.data.hot import hot_tables
    from koop_app.models import Dataset

    normalize = importlib.import_module("koop_app.data.normalize")
    call_command("migrate", verbosity=0)
    path = BIG / "data" / f"{NAME}.geojson"
    if not Dataset.objects.filter(dataset_id=NAME).exists():
        call_command("koop_dataset", "geojson", NAME, option=[f"source={NAME}.geojson"],
                     id_field="id", ttl=8640000, max_record_count=2000)
    dataset = Dataset.objects.get(dataset_id=NAME)
    clock = time.perf_counter()
    with path.open("rb") as lines:
        next(lines)
        sample = [orjson.loads(line.rstrip(b",\n")) for line in itertools.islice(lines, 20000)]
    probe = normalize.normalize({"type": "FeatureCollection", "features": sample}, label=NAME,
                                assign_ids=lambda keys: pa.array(range(1, len(keys) + 1)),
                                overrides=overrides_of(dataset))
    con = duck.connect()
    spec = json.dumps({"geometry": {"coordinates": "DOUBLE[]"}, "properties": {
        "id": "BIGINT", "name": "VARCHAR", "category": "VARCHAR", "value": "DOUBLE",
        "count": "INTEGER", "created": "DOUBLE", "created_iso": "TIMESTAMP",
        "flag": "BOOLEAN"}})
    rows = con.execute(f"""
        WITH f AS (SELECT json_transform(rtrim(line, ','), '{spec}') AS j
                   FROM read_csv('{path}', columns={{'line': 'VARCHAR'}}, header=false,
                                 delim=chr(1), quote='', escape='', skip=1, auto_detect=false)
                   WHERE line LIKE '{{"type":"Feature"%')
        SELECT j.properties.id AS id, j.properties.name AS name,
               j.properties.category AS category, j.properties.value AS value,
               j.properties.count AS count, j.properties.created AS created,
               epoch_ms(j.properties.created_iso) AS created_iso,
               CAST(j.properties.flag AS SMALLINT) AS flag,
               ST_AsWKB(ST_Point(j.geometry.coordinates[1], j.geometry.coordinates[2]))
                   AS _koop_geom,
               j.geometry.coordinates[1] AS _koop_xmin, j.geometry.coordinates[2] AS _koop_ymin,
               j.geometry.coordinates[1] AS _koop_xmax, j.geometry.coordinates[2] AS _koop_ymax
        FROM f""").to_arrow_table()
    table = rows.select(probe.table.schema.names).cast(probe.table.schema)
    read_s = time.perf_counter() - clock
    fields = tuple(
        f if f.name != "category" else type(f)(**{**f.as_dict(), "enum_values": (
            normalize._enum_values(table.column("category").combine_chunks()))})
        for f in probe.schema.fields)
    extent = tuple(float(pc.min(table.column(c)).as_py() if i < 2 else
                         pc.max(table.column(c)).as_py())
                   for i, c in enumerate(normalize.BBOX_COLUMNS))
    schema = type(probe.schema)(fields, probe.schema.object_id_field,
                                probe.schema.geometry_type, extent, probe.schema.metadata)
    blob = write_ipc(table)
    version = hashlib.blake2b(blob, digest_size=8).hexdigest()
    from koop_app.data import _cache_key

    key = _cache_key(dataset)
    now = time.time()
    pointer = cache.Pointer(key, version, now, now + 8640000,
                            (cache.LayerEntry(0, "layer", schema, table.num_rows, len(blob)),))
    cache.store(pointer, {0: blob})
    stored_s = time.perf_counter() - clock
    hot_tables.put(f"{key}|0", version, table, schema, now)
    hot_s = time.perf_counter() - clock - stored_s
    from datetime import UTC, datetime
    Dataset.objects.filter(pk=dataset.pk).update(
        cache_key=key, version=version, last_refresh=datetime.fromtimestamp(now, UTC),
        expires_at=datetime.fromtimestamp(now + 8640000, UTC), feature_count=table.num_rows)
    print(json.dumps({"features": table.num_rows, "version": version, "blob_mb": len(blob) >> 20,
                      "read_s": round(read_s, 1), "read_and_store_s": round(stored_s, 1),
                      "hot_file_build_s": round(hot_s, 1),
                      "hot_file_mb": sum(p.stat().st_size for p in
                                         (BIG / "var" / "hot").glob("*/*.duckdb")) >> 20}))


def rebuild() -> None:
    """Build the hot file again from the cached blob (KOOP_HOT_ORDER=hilbert to compare)."""
    os.environ.update(env(), KOOP_HOT_ORDER=os.environ.get("KOOP_HOT_ORDER", "cells"))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from koop_app.data import cache, hotfiles
    from koop_app.data.arrowio import stream_ipc
    from koop_app.data.hot import hot_tables

    pointer = cache.get_pointer(f"geojson::{NAME}")
    blob = cache.get_blob(pointer.key, pointer.version, 0)
    hot = hotfiles.HotFile.of(hotfiles.folder(), f"{pointer.key}|0", pointer.version)
    assert hotfiles.try_delete(hot), "the hot file is in use"
    clock = time.perf_counter()
    hot_tables.put(f"{pointer.key}|0", pointer.version, stream_ipc(blob),
                   pointer.layers[0].schema, pointer.fetched_at)
    print(json.dumps({"order": os.environ["KOOP_HOT_ORDER"],
                      "hot_file_build_s": round(time.perf_counter() - clock, 1),
                      "hot_file_mb": hot.path.stat().st_size >> 20}))


def mercator(lon: float, lat: float) -> tuple[float, float]:
    import math

    return lon * 20037508.34 / 180, math.log(math.tan((90 + lat) * math.pi / 360)) * 6378137


def tile_params(z: int, lon: float, lat: float) -> dict[str, str]:
    """The query an ArcGIS JS FeatureLayer sends for one 512 px view tile in Web Mercator."""
    import math

    size = 2 * 20037508.34 / 2 ** z
    x, y = mercator(lon, lat)
    xmin = math.floor((x + 20037508.34) / size) * size - 20037508.34
    ymin = math.floor((y + 20037508.34) / size) * size - 20037508.34
    resolution = size / 512
    envelope = {"xmin": xmin, "ymin": ymin, "xmax": xmin + size, "ymax": ymin + size,
                "spatialReference": {"wkid": 102100}}
    return {"f": "json", "geometry": json.dumps(envelope), "geometryType": "esriGeometryEnvelope",
            "inSR": "102100", "spatialRel": "esriSpatialRelIntersects", "outSR": "102100",
            "outFields": "id,category", "where": "1=1", "resultType": "tile",
            "resultRecordCount": "8000", "orderByFields": "id",
            "maxAllowableOffset": str(resolution),
            "quantizationParameters": json.dumps({"mode": "view", "originPosition": "upperLeft",
                                                  "tolerance": resolution,
                                                  "extent": envelope})}


QUERY = f"/geojson/rest/services/{NAME}/FeatureServer/0/query?"
SHAPES = {
    "where_bbox_page": {"where": "value > 100", "geometry": "-110,30,-85,45",
                        "geometryType": "esriGeometryEnvelope", "inSR": "4326",
                        "spatialRel": "esriSpatialRelIntersects", "outFields": "*",
                        "resultOffset": "0", "resultRecordCount": "1000", "f": "json"},
    "count_where": {"where": "category = 'Park' AND value > 500", "returnCountOnly": "true",
                    "f": "json"},
    "count_all": {"where": "1=1", "returnCountOnly": "true", "f": "json"},
    "tile_z8": tile_params(8, -100.2, 40.1),
    "tile_z6": tile_params(6, -100.2, 40.1),
}


def get(url: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}{url}", timeout=300) as answer:
        body = answer.read()
    if b'"error"' in body[:20]:
        raise RuntimeError(body[:300])
    return body


def serve() -> None:
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "koopsite.wsgi", "-b",
                               f"127.0.0.1:{PORT}", "--log-level", "warning", *SERVER.split()],
                              cwd=ROOT, env=env())
    try:
        while True:
            try:
                get("/rest/info")
                break
            except OSError:
                time.sleep(0.2)
        clock = time.perf_counter()
        get(QUERY + urllib.parse.urlencode(SHAPES["count_all"]))
        first = time.perf_counter() - clock
        results = {"server": f"gunicorn {SERVER}", "first_answer_s": round(first, 2),
                   "duckdb_threads": os.environ.get("KOOP_DUCKDB_THREADS", "cores")}
        for name, params in SHAPES.items():
            url = QUERY + urllib.parse.urlencode(params)
            for _ in range(6):  # every worker warm
                body = get(url)
            times = []
            for _ in range(SAMPLES):
                clock = time.perf_counter()
                get(url)
                times.append(time.perf_counter() - clock)
            results[name] = {"p50_ms": round(statistics.median(times) * 1000, 1),
                             "bytes": len(body)}
        print(json.dumps(results))
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    {"generate": generate, "load": load, "rebuild": rebuild, "serve": serve}[sys.argv[1]]()
