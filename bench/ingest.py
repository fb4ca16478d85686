"""Refresh benchmark: wall time and peak RSS of one refresh (fetch + normalise + store).

    .venv/bin/python bench/ingest.py                      # every case
    .venv/bin/python bench/ingest.py points_1m_noid csv_1m
    flock /work/wt/heavy.lock .venv/bin/python bench/ingest.py

Each case is a file generated once under $INGEST_DIR (default /tmp/ingest/bench), registered
as a dataset and refreshed by ``data.refresh(dataset, keep_hot=False)`` (what ``manage.py
koop_refresh`` does) in a process of its own, measured by ``/usr/bin/time -v``: elapsed wall
clock and maximum resident set size of that process. The cache is the embedded file cache
(koopsite settings without REDIS_URL) and the database SQLite, as a first install has them.
Cases:
    points_1m_id     1M points, integer id field (the dataset's id field is "id")
    points_1m_noid   1M points, no id field (content keys), ISO date strings
    points_1m_again  points_1m_noid refreshed a second time (ids known: the join path)
    csv_1m           1M rows, latitude/longitude columns, ISO dates
    points_10m       10M points with an id field: a 2.6 GB file
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("INGEST_DIR", "/tmp/ingest/bench"))
DATA = WORK / "data"
VAR = WORK / "var"
PY = str(ROOT / ".venv" / "bin" / "python")
CATEGORIES = ["Park", "School", "Hospital", "Library", "Museum", "Restaurant", "Store",
              "Station", "Church", "Office"]

CASES = {
    # name: (file, provider, rows, options, dataset overrides)
    "points_1m_id": ("points_1m_id.geojson", "geojson", 1_000_000, {}, {"id_field": "id"}),
    "points_1m_noid": ("points_1m_noid.geojson", "geojson", 1_000_000, {}, {}),
    "points_1m_again": ("points_1m_noid.geojson", "geojson", 1_000_000, {}, {}),
    "csv_1m": ("points_1m.csv", "csv", 1_000_000, {}, {}),
    "points_10m": ("points_10m.geojson", "geojson", 10_000_000, {}, {"id_field": "id"}),
}


def _rows(count: int, seed: int):
    """(id, lon, lat, name, category, value, count, iso date or None, flag) per row."""
    rng = random.Random(seed)
    for i in range(1, count + 1):
        created = None if rng.random() < 0.03 else 1420070400 + rng.randrange(315_000_000)
        iso = None if created is None else time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                         time.gmtime(created))
        yield (i, round(rng.uniform(-125, -66), 5), round(rng.uniform(24, 50), 5),
               None if rng.random() < 0.03 else f"Place {rng.randrange(100000)} {i}",
               rng.choice(CATEGORIES), round(rng.uniform(0, 1000), 3), rng.randrange(500),
               iso, rng.random() < 0.5)


def _js(value) -> str:
    return json.dumps(value)


def generate_geojson(path: Path, count: int, with_id: bool) -> None:
    tmp = path.with_suffix(".part")
    with tmp.open("w") as out:
        out.write('{"type":"FeatureCollection","features":[\n')
        for n, (i, x, y, name, cat, value, cnt, iso, flag) in enumerate(_rows(count, 7)):
            ident = f'"id":{i},' if with_id else ""
            out.write(f'{"," if n else ""}{{"type":"Feature","geometry":{{"type":"Point",'
                      f'"coordinates":[{x},{y}]}},"properties":{{{ident}"name":{_js(name)},'
                      f'"category":"{cat}","value":{value},"count":{cnt},'
                      f'"created":{_js(iso)},"flag":{_js(flag)}}}}}\n')
        out.write('],"bbox":[-125,24,-66,50]}\n')
    tmp.rename(path)


def generate_csv(path: Path, count: int) -> None:
    tmp = path.with_suffix(".part")
    with tmp.open("w") as out:
        out.write("id,longitude,latitude,name,category,value,count,created,flag\n")
        for i, x, y, name, cat, value, cnt, iso, flag in _rows(count, 8):
            out.write(f'{i},{x},{y},"{name or ""}",{cat},{value},{cnt},{iso or ""},'
                      f'{"true" if flag else "false"}\n')
    tmp.rename(path)


def ensure(case: str) -> Path:
    name, provider, rows, _, overrides = CASES[case]
    path = DATA / name
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        clock = time.perf_counter()
        if provider == "csv":
            generate_csv(path, rows)
        else:
            generate_geojson(path, rows, with_id="id_field" in overrides)
        print(f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - clock:.0f} s", flush=True)
    return path


def environment() -> dict[str, str]:
    return {**os.environ, "KOOP_VAR_DIR": str(VAR), "KOOP_DATA_DIR": str(DATA),
            "DJANGO_SETTINGS_MODULE": "koopsite.settings", "KOOP_LOG_LEVEL": "WARNING",
            "DJANGO_SECRET_KEY": "bench", "PYTHONPATH": str(ROOT)}


def child(case: str) -> None:
    """In the measured process: register the case's dataset and refresh it once."""
    import django
    from django.conf import settings

    django.setup()
    settings.KOOP["MAX_DOWNLOAD_BYTES"] = 8 * 1024**3  # the 10M file is 2.6 GB
    from koop_app import data
    from koop_app.models import Dataset, Provider

    name, provider, rows, options, overrides = CASES[case]
    plugin = Provider.objects.get(name=provider)
    dataset, _ = Dataset.objects.update_or_create(
        provider=plugin, dataset_id=case.removesuffix("_again"),
        defaults={"options": {"source": name, **options}, **overrides})
    if not case.endswith("_again"):
        from koop_app.data import ids
        ids.forget_ids(plugin.plugin.create_key(data.provider_request(dataset)))
    phases: list[str] = []

    def progress(phase, done, total, features):
        if not phases or phases[-1] != phase:
            phases.append(phase)

    clock = time.perf_counter()
    layers = data.refresh(dataset, keep_hot=False, trigger="command")
    refresh_s = time.perf_counter() - clock
    print(json.dumps({"features": layers.count, "refresh_s": round(refresh_s, 2)}))


def measure(case: str) -> dict:
    path = ensure(case)
    command = ["/usr/bin/time", "-v", PY, __file__, "child", case]
    done = subprocess.run(command, env=environment(), capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{case} failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    hours, minutes, seconds = wall.groups()
    result.update(case=case, file_mb=round(path.stat().st_size / 1e6),
                  process_s=round(int(hours or 0) * 3600 + int(minutes) * 60
                                  + float(seconds), 2),
                  peak_rss_mb=round(int(rss.group(1)) / 1024))
    return result


def setup() -> None:
    VAR.mkdir(parents=True, exist_ok=True)
    subprocess.run([PY, str(ROOT / "manage.py"), "migrate", "-v", "0"], env=environment(),
                   check=True)


def main(argv: list[str]) -> None:
    if argv[:1] == ["child"]:
        child(argv[1])
        return
    cases = argv or list(CASES)
    setup()
    print("case | file MB | features | refresh s | process s | peak RSS MB")
    for case in cases:
        r = measure(case)
        print(f"{r['case']} | {r['file_mb']} | {r['features']} | {r['refresh_s']} | "
              f"{r['process_s']} | {r['peak_rss_mb']}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
