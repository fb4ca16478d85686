"""OGC API - Features items pages: ours vs pygeoapi, on the same GeoJSON file, side by side.

    flock /work/wt/heavy.lock .venv/bin/python bench/ogcapi_vs_pygeoapi.py
    BENCH_POINTS=100000 BENCH_SAMPLES=15 BENCH_SECONDS=8 ...        # the knobs (defaults)

Data ($OGC_BENCH_DIR, default var/bench-ogcapi): ``points.geojson``, BENCH_POINTS points
(seeded, uniform over lon -125..-66, lat 24..50) with ``id``, ``name``, ``category`` (c0..c9)
and ``value``. pygeoapi (the newest release on PyPI) runs from its own virtualenv
(var/bench-pygeoapi-venv, made here with python3.11 -m venv + pip: never in requirements.txt)
with its GeoJSON provider on that file, under gunicorn (2 workers x 4 threads, gthread);
ours is the site as ``make run`` serves it (scripts/serve: waitress, 2 processes x 4 threads)
with the file registered as the geojson dataset ``points`` (max record count 2000).

Cases (each asked 4 times to warm up, then BENCH_SAMPLES times one after the other (c=1), then
by 8 clients for BENCH_SECONDS (c=8)): items pages of 100 and 1000, a deep page (offset
90% in), a bbox, a property filter. Time: the HTTP round trip on loopback to the last byte.
Each answer's feature count is checked to be the same from both servers.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from koop_app.siteload import ServedSite, timed_get  # noqa: E402
from koop_app.testing import free_port  # noqa: E402

WORK = Path(os.environ.get("OGC_BENCH_DIR", ROOT / "var" / "bench-ogcapi")).resolve()
VENV = ROOT / "var" / "bench-pygeoapi-venv"
POINTS = int(os.environ.get("BENCH_POINTS", "100000"))
SAMPLES = int(os.environ.get("BENCH_SAMPLES", "15"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
AREA = (-125.0, 24.0, -66.0, 50.0)
DEEP = int(POINTS * 0.9)
CASES = {  # name: query string (the same for both servers)
    "items limit=100": "limit=100",
    "items limit=1000": "limit=1000",
    f"deep page offset={DEEP} limit=100": f"limit=100&offset={DEEP}",
    "bbox (~1% of the area) limit=100": "bbox=-100,35,-94,37.6&limit=100",
    "property filter category=c3 limit=100": "category=c3&limit=100",
}


# --- data -----------------------------------------------------------------------------------

def write_points(path: Path) -> None:
    rng = random.Random(7)
    features = []
    for i in range(POINTS):
        x = rng.uniform(AREA[0], AREA[2])
        y = rng.uniform(AREA[1], AREA[3])
        features.append({"type": "Feature", "id": i + 1, "geometry": {
            "type": "Point", "coordinates": [round(x, 6), round(y, 6)]},
            "properties": {"id": i + 1, "name": f"point {i + 1}",
                           "category": f"c{i % 10}", "value": round(rng.random() * 1000, 3)}})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": features}))


# --- our site -------------------------------------------------------------------------------

def koop_env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "KOOP_", "REDIS_", "CELERY_", "DATABASE_"))}
    out.update({"DJANGO_SETTINGS_MODULE": "koopsite.settings", "KOOP_VAR_DIR": str(WORK / "var"),
                "KOOP_DATA_DIR": str(WORK / "data"), "DJANGO_DEBUG": "0",
                "KOOP_LOG_LEVEL": "WARNING", "CELERY_BROKER_URL": "memory://"})
    return out


def prepare_koop() -> None:
    def manage(*args: str) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=koop_env(),
                       check=True, stdout=subprocess.DEVNULL)

    manage("migrate", "--noinput", "-v0")
    manage("koop_dataset", "geojson", "points", "--option", "source=points.geojson",
           "--ttl", "8640000", "--max-record-count", "2000", "--refresh")


# --- pygeoapi -------------------------------------------------------------------------------

def ensure_pygeoapi() -> Path:
    python = VENV / "bin" / "python"
    if not (VENV / "bin" / "pygeoapi").exists() or not (VENV / "bin" / "gunicorn").exists():
        if not python.exists():
            subprocess.run(["python3.11", "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "pygeoapi", "gunicorn"],
                       check=True)
    return python


def pygeoapi_version(python: Path) -> str:
    return subprocess.run([str(python), "-c", "import pygeoapi; print(pygeoapi.__version__)"],
                          check=True, capture_output=True, text=True).stdout.strip()


def pygeoapi_config(port: int, data: Path) -> Path:
    config = {
        "server": {"bind": {"host": "127.0.0.1", "port": port},
                   "url": f"http://127.0.0.1:{port}", "mimetype": "application/json; "
                   "charset=UTF-8", "encoding": "utf-8", "language": "en-US",
                   "limits": {"default_items": 100, "max_items": 2000}, "pretty_print": False,
                   "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                           "attribution": "OSM"}},
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {"title": "bench", "description": "bench", "keywords": ["b"],
                               "keywords_type": "theme", "terms_of_service": "none",
                               "url": "http://127.0.0.1"},
            "license": {"name": "none", "url": "http://127.0.0.1"},
            "provider": {"name": "bench", "url": "http://127.0.0.1"},
            "contact": {"name": "bench"}},
        "resources": {"points": {
            "type": "collection", "title": "points", "description": "points",
            "keywords": ["points"],
            "extents": {"spatial": {"bbox": list(AREA),
                                    "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
            "providers": [{"type": "feature", "name": "GeoJSON", "data": str(data),
                           "id_field": "id"}]}},
    }
    path = WORK / "pygeoapi.config.yml"
    path.write_text(json.dumps(config, indent=1))  # JSON is YAML
    return path


class PygeoapiSite:
    def __init__(self, python: Path, data: Path) -> None:
        self.port = free_port()
        self.config = pygeoapi_config(self.port, data)
        self.openapi = WORK / "pygeoapi.openapi.yml"
        self.env = {"PATH": f"{VENV / 'bin'}:/usr/bin:/bin",
                    "PYGEOAPI_CONFIG": str(self.config), "PYGEOAPI_OPENAPI": str(self.openapi)}
        subprocess.run([str(VENV / "bin" / "pygeoapi"), "openapi", "generate",
                        str(self.config), "--output-file", str(self.openapi)],
                       check=True, env=self.env, capture_output=True)
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PygeoapiSite:
        self.process = subprocess.Popen(
            [str(VENV / "bin" / "gunicorn"), "pygeoapi.flask_app:APP", "-b",
             f"127.0.0.1:{self.port}", "-w", "2", "--threads", "4", "-k", "gthread",
             "--timeout", "300"], env=self.env, cwd=WORK, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if timed_get(self.port, "/conformance?f=json", timeout=5)[0] == 200:
                    return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("pygeoapi did not start")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, 15)
            self.process.wait(timeout=20)


# --- measuring ------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def features_of(body: bytes) -> int:
    if body.lstrip().startswith(b"<"):  # GML: a WFS 2.0 member per feature
        return body.count(b"<wfs:member")
    return len(orjson.loads(body)["features"])


def measure(port: int, path: str) -> dict[str, float]:
    status, body, _ = timed_get(port, path, timeout=300)
    if status != 200:
        raise RuntimeError(f"{path}: HTTP {status}: {body[:200]!r}")
    count = features_of(body)
    for _ in range(3):  # each server process warms up (ours: its hot table; theirs: caches)
        timed_get(port, path, timeout=300)
    serial = [timed_get(port, path, timeout=300)[2] for _ in range(SAMPLES)]
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS

    def client() -> None:
        while time.monotonic() < deadline:
            got = timed_get(port, path, timeout=300)
            with lock:
                latencies.append(got[2])

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {"features": count,
            "c1_median_ms": round(statistics.median(serial) * 1000, 1),
            "c1_p95_ms": round(pct(serial, 0.95) * 1000, 1),
            "c1_rps": round(len(serial) / sum(serial), 1),
            "c8_median_ms": round(statistics.median(latencies) * 1000, 1),
            "c8_p95_ms": round(pct(latencies, 0.95) * 1000, 1),
            "c8_rps": round(len(latencies) / elapsed, 1)}


# WFS GetFeature against pygeoapi's items for the same page (pygeoapi serves no WFS): the page
# a WFS client (QGIS, GDAL) asks of us, beside what an OGC API client asks of pygeoapi.
WFS = "/geojson/points/WFSServer?service=WFS&version=2.0.0&request=GetFeature&typeNames={name}&"
WFS_CASES = {  # name: (our query, pygeoapi items query)
    "WFS GetFeature GML 3.2 count=100": ("count=100", "limit=100"),
    "WFS GetFeature GML 3.2 count=1000": ("count=1000", "limit=1000"),
    f"WFS GetFeature GML 3.2 startIndex={DEEP} count=100": (f"count=100&startIndex={DEEP}",
                                                           f"limit=100&offset={DEEP}"),
    "WFS GetFeature GML 3.2 bbox (~1% of the area) count=100": (
        "bbox=-100,35,-94,37.6,EPSG:4326&count=100", "bbox=-100,35,-94,37.6&limit=100"),
    "WFS GetFeature GeoJSON count=1000": ("count=1000&outputFormat=application/json",
                                          "limit=1000"),
}


def wfs_type_name(port: int) -> str:
    status, body, _ = timed_get(port, "/geojson/points/WFSServer?service=WFS&request="
                                      "GetCapabilities", timeout=300)
    found = re.search(rb"<wfs:Name>([^<]+)</wfs:Name>", body)
    if status != 200 or found is None:
        raise RuntimeError(f"WFS capabilities: HTTP {status}: {body[:200]!r}")
    return found.group(1).decode()


def main() -> None:
    data = WORK / "data" / "points.geojson"
    if not data.exists():
        write_points(data)
    python = ensure_pygeoapi()
    version = pygeoapi_version(python)
    if (WORK / "var").exists():
        shutil.rmtree(WORK / "var")
    prepare_koop()
    ours_base = "/geojson/points/OGCFeatureServer/collections/0/items?f=json&"
    theirs_base = "/collections/points/items?f=json&"
    rows = []
    with ServedSite(koop_env()) as ours, PygeoapiSite(python, data) as theirs:
        for name, query in CASES.items():
            mine = measure(ours.port, ours_base + query)
            other = measure(theirs.port, theirs_base + query)
            row = {"case": name, "ours": mine, "pygeoapi": other}
            if mine["features"] != other["features"]:
                row["note"] = "feature counts differ"
            rows.append(row)
            print(json.dumps(row), flush=True)
        wfs = WFS.format(name=quote(wfs_type_name(ours.port)))
        for name, (mine, other) in WFS_CASES.items():
            row = {"case": name, "ours": measure(ours.port, wfs + mine),
                   "pygeoapi": measure(theirs.port, theirs_base + other)}
            if row["ours"]["features"] != row["pygeoapi"]["features"]:
                row["note"] = "feature counts differ"
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\npygeoapi {version}, {POINTS} points, c=1: {SAMPLES} requests, c=8: {SECONDS} s")
    print("| case | ours c=1 median / p95 ms | pygeoapi c=1 median / p95 ms | ours c=8 req/s "
          "(p95 ms) | pygeoapi c=8 req/s (p95 ms) |")
    print("|---|---|---|---|---|")
    for row in rows:
        a, b = row["ours"], row["pygeoapi"]
        print(f"| {row['case']} ({a['features']} features) | {a['c1_median_ms']} / "
              f"{a['c1_p95_ms']} | {b['c1_median_ms']} / {b['c1_p95_ms']} | {a['c8_rps']} "
              f"({a['c8_p95_ms']}) | {b['c8_rps']} ({b['c8_p95_ms']}) |")


if __name__ == "__main__":
    main()
