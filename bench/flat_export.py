"""CSV / NDJSON exports of 1,000,000 points, streamed: rows per second and memory.

    flock /work/wt/heavy.lock .venv/bin/python bench/flat_export.py
    ROWS=200000 REPEAT=3 .venv/bin/python bench/flat_export.py

Data: a CSV of ROWS points (id, name, value, a date, lat/lon), generated once under
$BENCH_DIR/flat and registered as the cached dataset ``csv/flat_points`` (refreshed on first
use). Each run asks ``/csv/flat_points/export/0.<ext>`` through the whole Django stack (the
test client, no HTTP) and reads the streamed body to the end, as a client saving the file
does. Reported: the median wall time of REPEAT runs, rows/s, the body's size, and the
process's resident memory above its level before the export (sampled every 10 ms).
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("BENCH_DIR", "/tmp/koop-bench")) / "flat"
ROWS = int(os.environ.get("ROWS", "1000000"))
REPEAT = int(os.environ.get("REPEAT", "3"))
NAME = "flat_points"

os.environ.update(KOOP_VAR_DIR=str(WORK / "var"), KOOP_DATA_DIR=str(WORK / "data"),
                  DJANGO_DEBUG="0", DJANGO_SETTINGS_MODULE="koopsite.settings")
sys.path.insert(0, str(ROOT))


def write_csv(path: Path) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(7)
    ids = np.arange(1, ROWS + 1)
    table = pa.table({
        "id": ids,
        "name": pa.array([f"point {i}" for i in ids]),
        "value": rng.normal(100, 30, ROWS).round(3),
        "when": pa.array(1_700_000_000_000 + ids * 60_000).cast(pa.timestamp("ms", "UTC")),
        "lat": rng.uniform(25, 49, ROWS).round(6),
        "lon": rng.uniform(-124, -67, ROWS).round(6),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(table, path)


def rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    source = WORK / "data" / f"{NAME}.csv"
    if not source.exists():
        write_csv(source)
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment

    from koop_app.models import Dataset, Provider

    call_command("migrate", verbosity=0)
    setup_test_environment()
    rows = {p.name: p for p in Provider.sync_from_registry()}
    Dataset.objects.get_or_create(
        provider=rows["csv"], dataset_id=NAME,
        defaults={"options": {"source": source.name, "latitude": "lat", "longitude": "lon"},
                  "id_field": "id", "ttl": 8_640_000})
    client = Client()
    started = time.perf_counter()
    client.get(f"/csv/rest/services/{NAME}/FeatureServer/0/query", {"returnCountOnly": "true"})
    print(f"load (first request): {time.perf_counter() - started:.1f} s")
    print("| export | rows | MB | median s | rows/s | RSS above start, MB |\n|---|---:|---:|---:"
          "|---:|---:|")
    for ext, params in [("csv", {}), ("ndjson", {}), ("csv", {"geometryFormat": "wkt"})]:
        times, size, peak = [], 0, 0
        for _ in range(REPEAT):
            base = rss()
            high = [base]
            done = threading.Event()

            def sample(high: list[int] = high, done: threading.Event = done) -> None:
                while not done.wait(0.01):
                    high[0] = max(high[0], rss())

            sampler = threading.Thread(target=sample)
            sampler.start()
            started = time.perf_counter()
            response = client.get(f"/csv/{NAME}/export/0.{ext}", params)
            assert response.status_code == 200, response
            size = sum(len(piece) for piece in response.streaming_content)
            times.append(time.perf_counter() - started)
            done.set()
            sampler.join()
            peak = max(peak, high[0] - base)
        median = statistics.median(times)
        label = f"{ext} {' '.join(f'{k}={v}' for k, v in params.items())}".strip()
        print(f"| {label} | {ROWS:,} | {size / 1e6:.0f} | {median:.2f} | "
              f"{ROWS / median:,.0f} | {peak / 1e6:.0f} |")


if __name__ == "__main__":
    main()
