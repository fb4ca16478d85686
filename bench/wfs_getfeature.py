"""WFS GetFeature, in process: milliseconds per 1,000-feature page of a 100,000-point layer.

    flock /work/wt/heavy.lock .venv/bin/python bench/wfs_getfeature.py
    ROWS=1000000 PAGE=1000 SAMPLES=20 ... bench/wfs_getfeature.py

Uses the test settings (SQLite, file cache, a temporary DATA_DIR), writes a GeoJSON file of
seeded points (an integer, a double, a text, a date), registers it and asks the WFS through
Django's test client: GML 3.2 pages at several start indexes, GML 3.1.1 (WFS 1.1), GeoJSON, a
filtered page and a BBOX page. Prints the median and best of SAMPLES (after one warm-up that
loads the data).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.test.utils import setup_databases, setup_test_environment  # noqa: E402

ROWS = int(os.environ.get("ROWS", "100000"))
PAGE = int(os.environ.get("PAGE", "1000"))
SAMPLES = int(os.environ.get("SAMPLES", "15"))


def write_points(path: Path) -> None:
    rng = np.random.default_rng(7)
    lon = rng.uniform(-10, 30, ROWS)
    lat = rng.uniform(35, 60, ROWS)
    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
                 "properties": {"id": i + 1, "value": float(v), "name": f"point {i}",
                                "seen": f"2024-01-{1 + i % 28:02d}T10:00:00Z"}}
                for i, (x, y, v) in enumerate(zip(lon.tolist(), lat.tolist(),
                                                  rng.normal(0, 100, ROWS).tolist(),
                                                  strict=True))]
    path.write_bytes(orjson.dumps({"type": "FeatureCollection", "features": features}))


def timed(client, url: str, params: dict[str, str]) -> tuple[float, float, int]:
    times = []
    size = 0
    for _ in range(SAMPLES):
        start = time.perf_counter()
        response = client.get(url, params)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, body[:300]
        size = len(body)
    return statistics.median(times), min(times), size


def main() -> None:
    setup_test_environment()
    setup_databases(verbosity=0, interactive=False)
    settings.KOOP = {**settings.KOOP, "MAX_DOWNLOAD_BYTES": 1024**3,
                     "DEFAULT_MAX_RECORD_COUNT": max(PAGE, 2000)}
    from django.test import Client

    from koop_app.models import Dataset, Provider

    data_dir = Path(settings.KOOP["DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    write_points(data_dir / "bench_points.geojson")
    providers = {p.name: p for p in Provider.sync_from_registry()}
    Dataset.objects.create(provider=providers["geojson"], dataset_id="bench_points",
                           options={"source": "bench_points.geojson"},
                           max_record_count=max(PAGE, 2000))
    client = Client()
    url = "/geojson/bench_points/WFSServer"
    base = {"SERVICE": "WFS", "VERSION": "2.0.0", "REQUEST": "GetFeature",
            "TYPENAMES": "koop:bench_points", "COUNT": str(PAGE)}
    start = time.perf_counter()
    client.get(url, {**base, "COUNT": "1"})
    print(f"{ROWS:,} points; first request (load) {time.perf_counter() - start:.1f} s")
    cases = {
        "GML 3.2, first page": {},
        "GML 3.2, STARTINDEX=50000": {"STARTINDEX": "50000"},
        "GML 3.1.1 (WFS 1.1)": {"VERSION": "1.1.0", "MAXFEATURES": str(PAGE)},
        "GeoJSON": {"OUTPUTFORMAT": "application/json"},
        "GML 3.2, FILTER value > 0": {"FILTER": (
            '<fes:Filter xmlns:fes="http://www.opengis.net/fes/2.0"><fes:PropertyIsGreaterThan>'
            "<fes:ValueReference>value</fes:ValueReference><fes:Literal>0</fes:Literal>"
            "</fes:PropertyIsGreaterThan></fes:Filter>")},
        "GML 3.2, BBOX": {"BBOX": "40,0,55,20,urn:ogc:def:crs:EPSG::4326"},
        "GML 3.2, SRSNAME 3857": {"SRSNAME": "urn:ogc:def:crs:EPSG::3857"},
    }
    print(f"{'case':32} {'median ms':>10} {'best ms':>9} {'bytes':>10}")
    for name, extra in cases.items():
        median, best, size = timed(client, url, {**base, **extra})
        print(f"{name:32} {median:10.1f} {best:9.1f} {size:10,}")


if __name__ == "__main__":
    main()
