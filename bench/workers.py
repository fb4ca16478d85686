"""Memory per worker and c=1 vs c=8 throughput, with a 1M-point layer hot in every worker.

    flock /work/wt/heavy.lock .venv/bin/python bench/workers.py
    SERVERS="gunicorn -w 2 -k gthread --threads 4" DURATION=5 .venv/bin/python bench/workers.py

Loopback only. Uses the reference's data generator and bench.py (``../shared/koop-reference``,
copied to $BENCH_DIR, default /tmp/koop-bench, as bench/run.sh does) and refreshes points_1m once
into $WORKERS_VAR (default /tmp/hot/wvar). For each server shape: start it, load the layer in
every worker (each worker's /health reports its hot tables), measure the bench shapes at c=1
and c=8 with wrk, then read every process's RSS, PSS and USS from /proc/<pid>/smaps_rollup.
One JSON line per server shape; bench/RESULTS.md keeps the numbers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REF = Path(os.environ.get("KOOP_REF", ROOT.parent / "shared" / "koop-reference"))
WORK = Path(os.environ.get("BENCH_DIR", "/tmp/koop-bench"))
VAR = Path(os.environ.get("WORKERS_VAR", "/tmp/hot/wvar"))
PORT = int(os.environ.get("PORT", "8410"))
DURATION = os.environ.get("DURATION", "5")
DATASET = os.environ.get("DATASET", "points_1m")
SHAPES = os.environ.get("SHAPES", "where_bbox_page,count_where,stats_groupby,json_page")
GUNICORN = [sys.executable, "-m", "gunicorn", "koopsite.wsgi", "--log-level", "warning"]
DEFAULT_SERVERS = [
    "gunicorn -w 1 -k gthread --threads 8",
    "gunicorn -w 2 -k gthread --threads 4",
    "gunicorn -w 4 -k gthread --threads 2",
    "gunicorn -w 1 -k gthread --threads 8 --preload",
    "gunicorn -w 2 -k gthread --threads 4 --preload",
    "gunicorn -w 4 -k gthread --threads 2 --preload",
    "waitress --workers=1 --threads=8",
    "waitress --workers=2 --threads=4",
    "waitress --workers=4 --threads=2",
    "KOOP_DUCKDB_THREADS=1 waitress --workers=2 --threads=4",
]


def site_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "KOOP_", "REDIS_", "CELERY_", "DATABASE_"))}
    env.update({"DJANGO_SETTINGS_MODULE": "koopsite.settings", "KOOP_VAR_DIR": str(VAR),
                "KOOP_DATA_DIR": str(WORK / "koop-ref" / "data"), "DJANGO_DEBUG": "0",
                "KOOP_LOG_LEVEL": "WARNING", "CELERY_BROKER_URL": "memory://",
                # glibc: big buffers through mmap and few arenas, as bench/run.sh.
                "MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "65536"})
    return env


def prepare(env: dict[str, str]) -> None:
    if not (WORK / "koop-ref").is_dir():
        shutil.copytree(REF, WORK / "koop-ref")
    data = WORK / "koop-ref" / "data" / f"{DATASET}.geojson"
    if not data.exists():
        subprocess.run(["python3", "gen_data.py", DATASET], cwd=WORK / "koop-ref", check=True)
    marker = VAR / f"refreshed-{DATASET}"
    if marker.exists():
        return
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([*manage, "koop_dataset", "geojson", DATASET, "--option",
                    f"source={DATASET}.geojson", "--id-field", "id", "--ttl", "8640000",
                    "--max-record-count", "2000", "--refresh"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    marker.touch()


def command(shape: str) -> list[str]:
    address = f"127.0.0.1:{PORT}"
    if shape.startswith("waitress"):  # scripts/serve's server, its other options left default
        return [sys.executable, "-m", "koopsite.server", f"--listen={address}",
                *shape.split()[1:], "koopsite.wsgi:application"]
    return [*GUNICORN, "-b", address, *shape.split()[1:]]


def get(path: str, timeout: float = 120) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}{path}", timeout=timeout) as answer:
        return answer.read()


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def memory(pid: int) -> dict[str, int]:
    """RSS, PSS and USS (private pages) of one process, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value)
    return {"rss": fields["Rss"] // 1024, "pss": fields["Pss"] // 1024,
            "uss": (fields["Private_Clean"] + fields["Private_Dirty"]) // 1024}


QUERY = (f"/geojson/rest/services/{DATASET}/FeatureServer/0/query?where=1%3D1"
         "&returnCountOnly=true&f=json")


def warm(workers: list[int]) -> float:
    """Ask until every worker says it holds the layer; the seconds it took."""
    started = time.monotonic()
    warm_pids: set[int] = set()
    while set(workers) - warm_pids:
        if time.monotonic() - started > 600:
            raise RuntimeError(f"workers {set(workers) - warm_pids} never loaded the layer")
        threads = [threading.Thread(target=get, args=(QUERY,)) for _ in range(4 * len(workers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for _ in range(8 * len(workers)):
            process = json.loads(get("/health"))["process"]
            if process["hot_tables"]["tables"]:
                warm_pids.add(process["pid"])
    return time.monotonic() - started


def run(label: str, env: dict[str, str]) -> dict:
    """One server shape; leading NAME=value words are its environment (KOOP_DUCKDB_THREADS=1)."""
    words = label.split()
    extra = dict(w.split("=", 1) for w in words if "=" in w and w[:1].isupper())
    shape = " ".join(w for w in words if not ("=" in w and w[:1].isupper()))
    server = subprocess.Popen(command(shape), cwd=ROOT, env={**env, **extra},
                              stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get("/rest/info", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        pid = server.pid
        workers = [pid]
        expected = int(shape.replace("--workers=", "-w ").split("-w ")[1].split()[0])
        if shape.startswith("gunicorn") or expected > 1:
            while len(workers := children(pid)) < expected:
                time.sleep(0.1)
        warmed = warm(workers)
        out = WORK / "results" / f"workers_{label.replace(' ', '_').replace('/', '')}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(WORK / "koop-ref" / "bench.py"),
                        "--base", f"http://127.0.0.1:{PORT}/geojson/rest", "--service", DATASET,
                        "--duration", DURATION, "--concurrency", "1,8", "--only", SHAPES,
                        "--tool", "wrk", "--json", str(out), "--label", label],
                       check=True, stdout=subprocess.DEVNULL)
        results = json.loads(out.read_text())["results"]
        processes = [pid, *workers] if workers != [pid] else [pid]
        mem = {p: memory(p) for p in processes}
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    rps = {(r["query"], r["concurrency"]): r["rps"] for r in results}
    scaling = {q: round(rps[(q, 8)] / rps[(q, 1)], 2) for q in SHAPES.split(",")
               if rps.get((q, 1)) and rps.get((q, 8))}
    total = {k: sum(m[k] for m in mem.values()) for k in ("rss", "pss", "uss")}
    return {"server": label, "workers": len(workers), "warm_s": round(warmed, 1),
            "total_mib": total, "per_process_mib": list(mem.values()),
            "rps_c1": {q: rps.get((q, 1)) for q in SHAPES.split(",")},
            "rps_c8": {q: rps.get((q, 8)) for q in SHAPES.split(",")},
            "c8_over_c1": scaling,
            "p50_ms_c1": {r["query"]: r["p50_ms"] for r in results if r["concurrency"] == 1}}


def main() -> None:
    env = site_env()
    prepare(env)
    shapes = os.environ.get("SERVERS")
    for shape in shapes.split(";") if shapes else DEFAULT_SERVERS:
        print(json.dumps(run(shape.strip(), env)), flush=True)


if __name__ == "__main__":
    main()
