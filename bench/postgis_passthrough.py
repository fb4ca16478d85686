"""10M points in PostGIS, passed through, against the same rows served cached: side by side.

    .venv/bin/python bench/postgis_passthrough.py setup   # cluster + 10M rows + GiST (minutes)
    .venv/bin/python bench/postgis_passthrough.py cache   # the same rows into the data cache
    flock /work/wt/heavy.lock .venv/bin/python bench/postgis_passthrough.py serve
    .venv/bin/python bench/postgis_passthrough.py stop    # stop the cluster (keeps its files)

``setup`` starts a Debian PostgreSQL + PostGIS cluster under $BIG_DIR/pg (kept between runs:
``serve`` starts it again) and generates ``public.points_10m`` in SQL with generate_series
(id key, name, category of 10 values, value, count, created, flag, a Point in 4326 within
lon -125..-66, lat 24..50, as bench/points_10m.py's data), then its GiST index and ANALYZE.
``cache`` copies the same rows out (COPY) and loads them into the embedded site's data cache
and hot file as ``geojson/pg_points_10m`` (the direct path of points_10m.py's ``load``).
``serve`` runs gunicorn (2 workers, 4 threads) over both and prints the c=1 median of each
shape, pass-through and cached, after warm-up. Loopback only.
"""

from __future__ import annotations

import hashlib
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
sys.path.insert(0, str(ROOT))
BIG = Path(os.environ.get("BIG_DIR", "/tmp/hot/pgbench"))
COUNT = int(os.environ.get("BIG_COUNT", "10000000"))
PORT = int(os.environ.get("PORT", "8421"))
PG_PORT = int(os.environ.get("PG_PORT", "55432"))
SAMPLES = int(os.environ.get("SAMPLES", "21"))
SERVER = os.environ.get("SERVER", "-w 2 -k gthread --threads 4")
USER, PASSWORD, DB = "koop", "bench-password", "gis"
NAME = "pg_points_10m"
CATEGORIES = ["Park", "School", "Hospital", "Library", "Museum", "Station", "Market",
              "Stadium", "Church", "Bridge"]


def dsn() -> str:
    return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{PG_PORT}/{DB}"


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "KOOP_", "REDIS_", "CELERY_", "DATABASE_"))}
    out.update({"DJANGO_SETTINGS_MODULE": "koopsite.settings", "KOOP_VAR_DIR": str(BIG / "var"),
                "KOOP_DATA_DIR": str(BIG / "data"), "DJANGO_DEBUG": "0",
                "KOOP_LOG_LEVEL": "WARNING", "CELERY_BROKER_URL": "memory://",
                "MALLOC_ARENA_MAX": "2",
                "KOOP_CONNECTIONS": json.dumps({"postgis": {"bench": {
                    "dsn": f"postgresql://{USER}@127.0.0.1:{PG_PORT}/{DB}",
                    "password": PASSWORD, "pool_size": 4}}})})
    return out


# --- the cluster ---------------------------------------------------------------------------

def _pg(*argv: str) -> None:
    from tests.postgres import bindir

    user = "postgres" if os.geteuid() == 0 else None
    subprocess.run([str(bindir() / argv[0]), *argv[1:]], check=True, capture_output=True,
                   user=user, cwd=BIG, timeout=600)


def start_cluster() -> None:
    data = BIG / "pg"
    if (data / "postmaster.pid").exists():
        return
    options = (f"-c listen_addresses=127.0.0.1 -c port={PG_PORT} -c unix_socket_directories="
               f"{BIG} -c fsync=off -c shared_buffers=1GB -c maintenance_work_mem=1GB "
               "-c max_parallel_workers_per_gather=2 -c effective_cache_size=8GB "
               "-c synchronous_commit=off -c max_wal_size=8GB")
    _pg("pg_ctl", "-D", str(data), "-l", str(BIG / "pg.log"), "-o", options, "-w", "start")


def stop() -> None:
    if (BIG / "pg" / "postmaster.pid").exists():
        _pg("pg_ctl", "-D", str(BIG / "pg"), "-m", "fast", "-w", "stop")


def setup() -> None:
    import shutil

    import psycopg

    BIG.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(BIG, "postgres")
    if not (BIG / "pg").exists():
        (BIG / "pw").write_text(PASSWORD)
        if os.geteuid() == 0:
            shutil.chown(BIG / "pw", "postgres")
        _pg("initdb", "-D", str(BIG / "pg"), "-U", USER, f"--pwfile={BIG / 'pw'}",
            "--auth=scram-sha-256", "-E", "UTF8")
    start_cluster()
    with psycopg.connect(dsn().rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone():
            conn.execute(f'CREATE DATABASE "{DB}"')
    timings = {}
    with psycopg.connect(dsn(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        conn.execute("DROP TABLE IF EXISTS public.points_10m")
        clock = time.perf_counter()
        conn.execute("""
            CREATE UNLOGGED TABLE public.points_10m (
                id integer, name text, category text, value double precision,
                count integer, created timestamptz, flag boolean,
                geom geometry(Point, 4326))""")
        conn.execute("SELECT setseed(0.42)")
        conn.execute(f"""
            INSERT INTO public.points_10m
            SELECT i, 'point ' || i,
                   (%s::text[])[1 + floor(random() * 10)::int],
                   round((random() * 1000)::numeric, 2)::float8,
                   floor(random() * 100)::int,
                   timestamptz '2015-01-01' + floor(random() * 315360000) * interval '1 second',
                   random() < 0.5,
                   ST_SetSRID(ST_MakePoint(-125 + random() * 59, 24 + random() * 26), 4326)
            FROM generate_series(1, {COUNT}) AS i""", (CATEGORIES,))
        timings["insert_s"] = round(time.perf_counter() - clock, 1)
        clock = time.perf_counter()
        conn.execute("ALTER TABLE public.points_10m ADD PRIMARY KEY (id)")
        timings["primary_key_s"] = round(time.perf_counter() - clock, 1)
        clock = time.perf_counter()
        conn.execute("CREATE INDEX points_10m_geom ON public.points_10m USING gist (geom)")
        timings["gist_s"] = round(time.perf_counter() - clock, 1)
        clock = time.perf_counter()
        conn.execute("VACUUM ANALYZE public.points_10m")
        timings["analyze_s"] = round(time.perf_counter() - clock, 1)
        size = conn.execute("SELECT pg_total_relation_size('public.points_10m')").fetchone()[0]
    print(json.dumps({"rows": COUNT, **timings, "table_and_indexes_mb": size >> 20}))


# --- the same rows, cached -----------------------------------------------------------------

def cache() -> None:
    os.environ.update(env())
    import django

    django.setup()
    import psycopg
    import pyarrow as pa
    import pyarrow.compute as pc
    from django.core.management import call_command

    from koop_app.data import _cache_key, duck, normalize, overrides_of
    from koop_app.data import cache as data_cache
    from koop_app.data.arrowio import write_ipc
    from koop_app.data.hot import hot_tables
    from koop_app.models import Dataset, Provider

    call_command("migrate", verbosity=0)
    Provider.sync_from_registry()
    start_cluster()
    if not Dataset.objects.filter(dataset_id=NAME).exists():
        call_command("koop_dataset", "geojson", NAME, option=[f"source={NAME}.geojson"],
                     id_field="id", ttl=8640000, max_record_count=2000, check=False)
    if not Dataset.objects.filter(dataset_id="public.points_10m").exists():
        Dataset.objects.create(provider=Provider.objects.get(name="postgis"), host="bench",
                               dataset_id="public.points_10m", options={},
                               max_record_count=2000)
    dataset = Dataset.objects.get(dataset_id=NAME)
    clock = time.perf_counter()
    csv = BIG / "points.csv"
    with psycopg.connect(dsn()) as conn, conn.cursor() as cur, csv.open("wb") as out:
        with cur.copy("COPY (SELECT id, name, category, value, count, "
                      "CAST(extract(epoch FROM created) * 1000 AS bigint), flag::int, "
                      "ST_X(geom), ST_Y(geom) FROM public.points_10m ORDER BY id) "
                      "TO STDOUT WITH (FORMAT csv)") as copy:
            for block in copy:
                out.write(block)
    copy_s = time.perf_counter() - clock
    first = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [-100.0, 40.0]},
              "properties": {"id": 1, "name": "point 1", "category": "Park", "value": 1.5,
                             "count": 3, "created": "2015-01-01T00:00:00Z", "flag": True}}]
    probe = normalize.normalize({"type": "FeatureCollection", "features": first,
                                 "metadata": {"idField": "id"}}, label=NAME,
                                assign_ids=lambda keys: pa.array(range(1, len(keys) + 1)),
                                overrides=overrides_of(dataset))
    con = duck.connect()
    rows = con.execute(f"""
        SELECT id, name, category, value, count, created, CAST(flag AS SMALLINT) AS flag,
               ST_AsWKB(ST_Point(x, y)) AS _koop_geom, x AS _koop_xmin, y AS _koop_ymin,
               x AS _koop_xmax, y AS _koop_ymax
        FROM read_csv('{csv}', header=false, columns={{'id': 'BIGINT', 'name': 'VARCHAR',
             'category': 'VARCHAR', 'value': 'DOUBLE', 'count': 'INTEGER',
             'created': 'BIGINT', 'flag': 'INTEGER', 'x': 'DOUBLE', 'y': 'DOUBLE'}})
    """).to_arrow_table()
    table = rows.select(probe.table.schema.names).cast(probe.table.schema)
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
    key = _cache_key(dataset)
    now = time.time()
    pointer = data_cache.Pointer(key, version, now, now + 8640000,
                                 (data_cache.LayerEntry(0, "layer", schema, table.num_rows,
                                                        len(blob)),))
    data_cache.store(pointer, {0: blob})
    hot_tables.put(f"{key}|0", version, table, schema, now)
    from datetime import UTC, datetime
    Dataset.objects.filter(pk=dataset.pk).update(
        cache_key=key, version=version, last_refresh=datetime.fromtimestamp(now, UTC),
        expires_at=datetime.fromtimestamp(now + 8640000, UTC), feature_count=table.num_rows)
    csv.unlink()
    print(json.dumps({"features": table.num_rows, "copy_s": round(copy_s, 1),
                      "cache_and_hot_s": round(time.perf_counter() - clock - copy_s, 1)}))


# --- serving -------------------------------------------------------------------------------

LAYERS = {"passthrough": "/postgis/rest/services/bench/public.points_10m/FeatureServer/0",
          "cached": f"/geojson/rest/services/{NAME}/FeatureServer/0"}
ENVELOPE = {"geometry": "-110,30,-85,45", "geometryType": "esriGeometryEnvelope",
            "inSR": "4326", "spatialRel": "esriSpatialRelIntersects"}
SMALL = {"geometry": "-100.5,39.5,-99.5,40.5", "geometryType": "esriGeometryEnvelope",
         "inSR": "4326", "spatialRel": "esriSpatialRelIntersects"}
STATS = json.dumps([{"statisticType": "count", "onStatisticField": "id",
                     "outStatisticFieldName": "n"},
                    {"statisticType": "avg", "onStatisticField": "value",
                     "outStatisticFieldName": "mean"}])
SHAPES = {
    "layer_info": ("", {"f": "json"}),
    "where_bbox_page_1000": ("/query", {"where": "value > 100", **ENVELOPE, "outFields": "*",
                                        "resultOffset": "0", "resultRecordCount": "1000",
                                        "f": "json"}),
    "small_bbox_all_json": ("/query", {**SMALL, "outFields": "*", "f": "json"}),
    "count_where": ("/query", {"where": "category = 'Park' AND value > 500",
                               "returnCountOnly": "true", "f": "json"}),
    "count_bbox": ("/query", {**ENVELOPE, "returnCountOnly": "true", "f": "json"}),
    "count_all": ("/query", {"where": "1=1", "returnCountOnly": "true", "f": "json"}),
    "statistics_by_category": ("/query", {"outStatistics": STATS,
                                          "groupByFieldsForStatistics": "category",
                                          "f": "json"}),
    "statistics_bbox": ("/query", {**SMALL, "outStatistics": STATS,
                                   "groupByFieldsForStatistics": "category", "f": "json"}),
    "page_2000_json": ("/query", {"where": "1=1", "outFields": "*", "resultOffset": "20000",
                                  "resultRecordCount": "2000", "f": "json"}),
    "page_2000_pbf": ("/query", {"where": "1=1", "outFields": "*", "resultOffset": "20000",
                                 "resultRecordCount": "2000", "f": "pbf"}),
    "page_2000_3857_pbf": ("/query", {**ENVELOPE, "outFields": "id,category",
                                      "outSR": "102100", "resultRecordCount": "2000",
                                      "f": "pbf"}),
    "object_ids_100": ("/query", {"objectIds": ",".join(str(i * 99_991) for i in range(1, 101)),
                                  "outFields": "*", "f": "json"}),
}


def get(url: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}{url}", timeout=300) as answer:
        body = answer.read()
    if b'"error"' in body[:20]:
        raise RuntimeError(body[:300])
    return body


def serve() -> None:
    start_cluster()
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "koopsite.wsgi", "-b",
                               f"127.0.0.1:{PORT}", "--log-level", "warning", *SERVER.split()],
                              cwd=ROOT, env=env())
    wanted = [n for n in sys.argv[2:]] or list(SHAPES)
    try:
        while True:
            try:
                get("/rest/info")
                break
            except OSError:
                time.sleep(0.2)
        results: dict[str, dict[str, object]] = {"server": {"gunicorn": SERVER}}
        for name in wanted:
            suffix, params = SHAPES[name]
            row: dict[str, object] = {}
            for side, layer in LAYERS.items():
                url = f"{layer}{suffix}?{urllib.parse.urlencode(params)}"
                for _ in range(4):  # every worker and pool warm
                    body = get(url)
                times = []
                for _ in range(SAMPLES):
                    clock = time.perf_counter()
                    get(url)
                    times.append(time.perf_counter() - clock)
                row[f"{side}_ms"] = round(statistics.median(times) * 1000, 1)
                row[f"{side}_bytes"] = len(body)
            results[name] = row
            print(name, json.dumps(row), flush=True)
        print(json.dumps(results))
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    {"setup": setup, "cache": cache, "serve": serve, "stop": stop}[sys.argv[1]]()
