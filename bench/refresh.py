"""Refresh benchmarks: queries while datasets refresh, memory of hot datasets, new versions.

    .venv/bin/python bench/refresh.py latency   # 100k points from a source that answers in 2 s
    .venv/bin/python bench/refresh.py memory    # three 1M-point datasets hot in one web process
    .venv/bin/python bench/refresh.py all
    SOURCE=points_1m DURATION=60 .venv/bin/python bench/refresh.py latency

Runs the production shape on 127.0.0.1: a real redis-server (cache and broker), a Celery
worker that refreshes, gunicorn (1 process, 4 threads) serving queries, and a local HTTP
source whose content changes on every fetch so that each refresh makes a new version. Load
comes from ../shared/koop-reference/bench.py (wrk). Needs the data of bench/run.sh
(gen_data.py under $BENCH_DIR/koop-ref/data). Results: $BENCH_DIR/results/refresh_*.json.
"""

from __future__ import annotations

import itertools
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORK = Path(os.environ.get("BENCH_DIR", "/tmp/koop-bench"))
BENCH_PY = WORK / "koop-ref" / "bench.py"
DATA = WORK / "koop-ref" / "data"
VAR = WORK / "var-refresh"
LOGS = WORK / "logs"
PORT = int(os.environ.get("PORT", "8101"))
DURATION = float(os.environ.get("DURATION", "20"))
CONCURRENCY = os.environ.get("CONCURRENCY", "4")
QUERIES = os.environ.get("QUERIES", "count_where,where_bbox_page")
SOURCE = os.environ.get("SOURCE", "points_100k")  # the latency run's data
PY = str(ROOT / ".venv" / "bin" / "python")

from koop_app.testing import RedisServer, SourceServer  # noqa: E402


def revisions(path: Path) -> Callable[[dict[str, str]], bytes]:
    """The file's bytes with a revision number in the first feature, new on every fetch."""
    content = path.read_bytes()
    at = content.index(b'"properties":') + len(b'"properties":')
    at = content.index(b"{", at) + 1
    counter = itertools.count(1)
    return lambda query: b"%s\"rev\":%d,%s" % (content[:at], next(counter), content[at:])


class Site:
    """Redis, a Celery worker and gunicorn started with one environment; stopped on exit."""

    def __init__(self, redis: RedisServer) -> None:
        shutil.rmtree(VAR, ignore_errors=True)
        LOGS.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "KOOP_VAR_DIR": str(VAR), "KOOP_DATA_DIR": str(DATA),
                    "REDIS_URL": redis.url, "DJANGO_DEBUG": "0", "KOOP_LOG_FORMAT": "json",
                    "KOOP_ALLOWED_SOURCE_NETWORKS": "127.0.0.1/32",
                    "DJANGO_SETTINGS_MODULE": "koopsite.settings",
                    # glibc: big buffers through mmap and few arenas, so memory goes back
                    "MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "65536"}
        os.environ.update(self.env)  # this process reads the cache and queues tasks too
        self.processes: list[subprocess.Popen[bytes]] = []
        self.manage("migrate", "-v0")
        import django

        django.setup()

    def manage(self, *args: str) -> None:
        with open(LOGS / "manage.log", "ab") as log:
            subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=self.env, check=True,
                           stdout=log, stderr=subprocess.STDOUT)

    def start(self, name: str, *command: str) -> subprocess.Popen[bytes]:
        log = open(LOGS / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log,
                                   stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def start_worker(self) -> None:
        self.start("worker", PY, "-m", "celery", "-A", "koopsite", "worker", "--pool", "solo",
                   "--without-gossip", "--without-mingle", "--without-heartbeat")
        wait_for(lambda: b"ready" in (LOGS / "worker.log").read_bytes(), 60, "worker")

    def start_web(self) -> int:
        """Start gunicorn; return the pid of its one worker process (the one serving)."""
        master = self.start("web", str(ROOT / ".venv" / "bin" / "gunicorn"), "koopsite.wsgi",
                            "-b", f"127.0.0.1:{PORT}", "-w", "1", "--threads", "4",
                            "-k", "gthread", "--log-level", "warning")
        wait_for(lambda: get("/rest/info") is not None, 60, "gunicorn")
        children = subprocess.run(["pgrep", "-P", str(master.pid)], capture_output=True,
                                  text=True).stdout.split()
        return int(children[0])

    def stop_web(self) -> None:
        web = self.processes[-1]
        web.terminate()
        web.wait(30)
        self.processes.remove(web)

    def close(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            process.wait(30)


def wait_for(check: Callable[[], Any], seconds: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise TimeoutError(f"{what}: nothing after {seconds} s")


def get(path: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}{path}", timeout=60) as answer:
            return orjson.loads(answer.read())
    except OSError:
        return None


def layer_path(service: str) -> str:
    return f"/geojson/rest/services/{service}/FeatureServer/0"


def served_edit_date(service: str) -> int | None:
    info = get(layer_path(service) + "?f=json")
    return (info or {}).get("editingInfo", {}).get("lastEditDate")


def register(site: Site, service: str, source: str) -> Any:
    site.manage("koop_dataset", "geojson", service, "--option", f"source={source}",
                "--id-field", "id", "--ttl", "864000", "--max-record-count", "2000", "--refresh")
    from koop_app.models import Dataset

    return Dataset.objects.select_related("provider").get(dataset_id=service)


def refresh_and_watch(dataset: Any, poll: float) -> dict[str, float]:
    """Queue a refresh; time it until the new version is in Redis, then until it is served.

    The web process is asked every ``poll`` seconds from the start, as a client would, so
    that it checks for new versions at its usual pace (KOOP["POINTER_CHECK_SECONDS"]).
    """
    from koop_app.data import cache
    from koopsite.celery import app

    key = dataset.cache_key
    before = cache.get_pointer(key).version
    sent = time.monotonic()
    app.send_task("koop_app.tasks.refresh_dataset", args=[dataset.pk],
                  kwargs={"trigger": "bench"})
    stored = wanted = None
    deadline = sent + 300
    while time.monotonic() < deadline:
        if stored is None:
            pointer = cache.get_pointer(key)
            if pointer is not None and pointer.version != before:
                stored, wanted = time.monotonic(), int(pointer.fetched_at * 1000)
        if served_edit_date(dataset.dataset_id) == wanted and stored is not None:
            served = time.monotonic()
            return {"refresh_s": round(stored - sent, 2),
                    "redis_to_served_ms": round((served - stored) * 1000)}
        time.sleep(poll)
    raise TimeoutError("the new version was not served within 300 s")


def bench(service: str, label: str, pid: int) -> list[dict[str, Any]]:
    out = WORK / "results" / f"refresh_{label}.json"
    subprocess.run([sys.executable, str(BENCH_PY), "--base",
                    f"http://127.0.0.1:{PORT}/geojson/rest", "--service", service,
                    "--duration", str(DURATION), "--concurrency", CONCURRENCY, "--only", QUERIES,
                    "--tool", "wrk", "--pid", str(pid), "--label", label, "--json", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    return orjson.loads(out.read_bytes())["results"]


@contextmanager
def refreshing(dataset: Any, poll: float) -> Iterator[list[dict[str, float]]]:
    """Refresh ``dataset`` back to back while the block runs; yield the cycles' timings."""
    cycles: list[dict[str, float]] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            cycles.append(refresh_and_watch(dataset, poll))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield cycles
    finally:
        stop.set()
        thread.join(300)


def hot_loads() -> list[dict[str, Any]]:
    lines = (LOGS / "web.log").read_bytes().splitlines()
    return [event for line in lines if line.startswith(b"{")
            and (event := orjson.loads(line)).get("event") == "hot.load"]


def rss_mib(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    found = {line.split(":")[0]: int(line.split()[1]) for line in status
             if line.startswith(("VmRSS", "VmHWM"))}
    return {"rss_mib": round(found["VmRSS"] / 1024), "peak_mib": round(found["VmHWM"] / 1024)}


def latency() -> dict[str, Any]:
    """p99 of queries while a 2 s source refreshes back to back, against the steady state."""
    service = f"refresh_{SOURCE}"
    with RedisServer() as redis, SourceServer() as source:
        url = source.route(f"/{service}.geojson", body=revisions(DATA / f"{SOURCE}.geojson"),
                           delay=2.0)
        site = Site(redis)
        try:
            site.start_worker()
            dataset = register(site, service, url)
            pid = site.start_web()
            get(layer_path(service) + "/query?where=1%3D1&resultRecordCount=1&f=json")
            time.sleep(3)
            steady = bench(service, f"steady_{SOURCE}", pid)
            with refreshing(dataset, poll=0.05) as under_load:
                during = bench(service, f"during_{SOURCE}", pid)
            idle = [refresh_and_watch(dataset, poll=0.01) for _ in range(5)]
        finally:
            site.close()
    return {"steady": steady, "during": during, "cycles_under_load": under_load,
            "cycles_idle": idle, "hot_loads": hot_loads()}


def memory() -> dict[str, Any]:
    """RSS of one web process holding three 1M-point datasets, and while one is replaced."""
    names = ["mem_1m_a", "mem_1m_b", "mem_1m_c"]
    with RedisServer() as redis, SourceServer() as source:
        body = revisions(DATA / "points_1m.geojson")
        site = Site(redis)
        try:
            site.start_worker()
            datasets = [register(site, name, source.route(f"/{name}.geojson", body=body))
                        for name in names]
            pid = site.start_web()
            steps = {"started": rss_mib(pid)}
            for name in names:
                clock = time.monotonic()
                get(layer_path(name) + "/query?where=1%3D1&resultRecordCount=1&f=json")
                steps[f"{name} hot"] = {**rss_mib(pid),
                                        "first_answer_ms": round((time.monotonic() - clock)
                                                                 * 1000)}
            for name in names:
                bench(name, f"memory_{name}", pid)
            steps["queried"] = rss_mib(pid)
            samples: list[int] = []
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    samples.append(rss_mib(pid)["rss_mib"])
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            cycle = refresh_and_watch(datasets[0], poll=0.05)
            time.sleep(8)  # the replaced table is dropped once idle (RETIRE_SECONDS)
            get(layer_path(names[1]) + "?f=json")  # any request tidies
            time.sleep(1)
            stop.set()
            sampler.join()
            steps["during a refresh (max)"] = {"rss_mib": max(samples), "cycle": cycle}
            steps["after the refresh"] = rss_mib(pid)
        finally:
            site.close()
    return {"steps": steps, "hot_loads": hot_loads()}


def report_latency(found: dict[str, Any]) -> None:
    print("\n| query | c | steady p50 | steady p99 | during p50 | during p99 | p99 ratio |")
    print("|---|---|---|---|---|---|---|")
    during = {(r["query"], r["concurrency"]): r for r in found["during"]}
    for mine in found["steady"]:
        other = during[(mine["query"], mine["concurrency"])]
        print(f"| {mine['query']} | {mine['concurrency']} | {mine['p50_ms']} | {mine['p99_ms']} "
              f"| {other['p50_ms']} | {other['p99_ms']} | "
              f"{other['p99_ms'] / mine['p99_ms']:.2f}x |")
    for name in ("cycles_under_load", "cycles_idle"):
        cycles = found[name]
        lags = [c["redis_to_served_ms"] for c in cycles]
        print(f"\n{name}: {len(cycles)} refreshes, refresh (queue -> Redis) median "
              f"{statistics.median(c['refresh_s'] for c in cycles)} s; Redis -> served "
              f"median {statistics.median(lags)} ms, max {max(lags)} ms")
    loads = [e["duration_ms"] for e in found["hot_loads"]]
    print(f"hot loads in the web process: {len(loads)}, median {statistics.median(loads)} ms")


def report_memory(found: dict[str, Any]) -> None:
    print("\n| step | RSS MiB | peak MiB | note |")
    print("|---|---|---|---|")
    for step, values in found["steps"].items():
        note = values.get("first_answer_ms") or values.get("cycle") or ""
        print(f"| {step} | {values['rss_mib']} | {values.get('peak_mib', '')} | {note} |")
    for event in found["hot_loads"]:
        print(f"hot load {event['key']}: {event['features']} features, "
              f"{event['bytes'] / 2**20:.0f} MiB decoded, {event['duration_ms']} ms")


def main(which: str) -> None:
    (WORK / "results").mkdir(parents=True, exist_ok=True)
    if which == "all":  # one process each: Django is set up once per process
        for name in ("latency", "memory"):
            subprocess.run([sys.executable, __file__, name], check=True)
        return
    for name, run, report in (("latency", latency, report_latency),
                              ("memory", memory, report_memory)):
        if which == name:
            found = run()
            suffix = f"_{SOURCE}" if name == "latency" else ""
            (WORK / "results" / f"refresh_{name}{suffix}_summary.json").write_bytes(
                orjson.dumps(found, option=orjson.OPT_INDENT_2))
            report(found)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "all")
