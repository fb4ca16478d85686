"""objectIds at the limit on 1M points: in-process timings, then gunicorn under 8 concurrent POSTs.

    .venv/bin/python bench/object_ids.py              # all parts
    .venv/bin/python bench/object_ids.py inprocess    # the view stack without HTTP
    .venv/bin/python bench/object_ids.py gunicorn     # HTTP, sequential then 8 concurrent
    .venv/bin/python bench/object_ids.py where        # long where clauses, in-process
    REPEAT=20 PORT=8102 .venv/bin/python bench/object_ids.py

Data: points_1m from ../shared/koop-reference's gen_data.py (as bench/run.sh makes it, under
$BENCH_DIR/koop-ref/data), registered and refreshed into $BENCH_DIR/var if missing. The ids are
a sorted random sample of 1..1,000,000 (seeded), sent as a form POST like ArcGIS clients do.
In-process: the Django test client through the whole view (parse, query, Esri JSON), median and
max of REPEAT runs per shape. gunicorn: `-w 1 --threads 4 -k gthread` on 127.0.0.1, the same
shapes over HTTP, then 8 clients posting 10,000 ids at once while a ninth asks /rest/info every
100 ms (its slowest answer shows whether the server froze).
"""

from __future__ import annotations

import http.client
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("BENCH_DIR", "/tmp/koop-bench"))
REF = Path(os.environ.get("KOOP_REF", ROOT.parent / "shared" / "koop-reference"))
DATA = WORK / "koop-ref" / "data"
VAR = WORK / "var"
PORT = int(os.environ.get("PORT", "8102"))
REPEAT = int(os.environ.get("REPEAT", "15"))
SERVICE = "points_1m"
QUERY = f"/geojson/rest/services/{SERVICE}/FeatureServer/0/query"
PY = os.environ.get("PYTHON", sys.executable)

os.environ.update(KOOP_VAR_DIR=str(VAR), KOOP_DATA_DIR=str(DATA), DJANGO_DEBUG="0",
                  DJANGO_SETTINGS_MODULE="koopsite.settings")
sys.path.insert(0, str(ROOT))


def ensure_data() -> None:
    if not (WORK / "koop-ref").is_dir():
        shutil.copytree(REF, WORK / "koop-ref")
    if not (DATA / f"{SERVICE}.geojson").exists():
        subprocess.run(["python3", "gen_data.py", SERVICE], cwd=WORK / "koop-ref", check=True)
    manage = [PY, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], check=True, cwd=ROOT)
    import django

    django.setup()
    from koop_app.models import Dataset

    if not Dataset.objects.filter(dataset_id=SERVICE).exists():
        subprocess.run([*manage, "koop_dataset", "geojson", SERVICE, "--option",
                        f"source={SERVICE}.geojson", "--id-field", "id", "--ttl", "8640000",
                        "--max-record-count", "2000", "--refresh"], check=True, cwd=ROOT)


def id_list(n: int) -> str:
    return ",".join(map(str, sorted(random.Random(n).sample(range(1, 1_000_001), n))))


SHAPES = {
    "features (outFields=*, first page)": {"outFields": "*", "f": "json"},
    "returnIdsOnly": {"returnIdsOnly": "true", "f": "json"},
    "returnCountOnly": {"returnCountOnly": "true", "f": "json"},
}


def timed(call: Callable[[], bytes]) -> tuple[float, bytes]:
    started = time.perf_counter()
    body = call()
    return (time.perf_counter() - started) * 1000, body


def cpu_ms(pid: int | None = None) -> float:
    """CPU time (user + system, all threads) of this process or of ``pid``, in ms."""
    if pid is None:
        return time.process_time() * 1000
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def report(label: str, times: list[float], cpu: float | None = None) -> None:
    line = f"  {label:<44} median {statistics.median(times):7.1f} ms   max {max(times):7.1f} ms"
    if cpu is not None:
        line += f"   CPU {cpu:7.1f} ms/request"
    print(line)


def inprocess() -> None:
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")  # testserver is not an allowed host here
    client.get(QUERY, {"where": "1=1", "resultRecordCount": 1})  # the table is hot
    print(f"in-process, Django test client, {REPEAT} runs each")
    for n in (10_000, 100_000):
        ids = id_list(n)
        for name, params in SHAPES.items():
            times = []
            cpu = cpu_ms()
            for _ in range(REPEAT):
                ms, body = timed(lambda p=params, i=ids: client.post(QUERY, {**p, "objectIds": i})
                                 .content)
                assert b'"error"' not in body[:20], body[:300]
                times.append(ms)
            report(f"{n:,} ids, {name}", times, (cpu_ms() - cpu) / REPEAT)


WHERES = {
    "450 terms 1+2+...+449 > 0 (issue 8)": "+".join(str(i) for i in range(450)) + " > 0",
    "450 terms value+value+... > 0": "+".join(["value"] * 450) + " > 0",
    "33 terms value+value+... > 0 (32 operators: at the limit)": "+".join(["value"] * 33)
                                                                 + " > 0",
    "600 ORed equalities on value": " OR ".join(f"value = {i}.5" for i in range(600)),
    "600 ORed equalities on name": " OR ".join(f"name = 'Quiet River {i}'" for i in range(600)),
    "IN list of 2,000 ids (at the limit)": "id IN (" + ",".join(str(i * 7) for i in range(2000))
                                           + ")",
    "600 ANDed ranges": " AND ".join(f"value > {i}" for i in range(600)),
}


def where() -> None:
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")  # testserver is not an allowed host here
    client.get(QUERY, {"where": "1=1", "resultRecordCount": 1})
    print(f"where clauses, returnCountOnly, in-process, {REPEAT} runs each")
    for name, text in WHERES.items():
        times, answer = [], b""
        cpu = cpu_ms()
        for _ in range(REPEAT):
            ms, answer = timed(lambda t=text: client.post(
                QUERY, {"where": t, "returnCountOnly": "true", "f": "json"}).content)
            times.append(ms)
        outcome = "refused (400)" if b'"error"' in answer else answer.decode()
        print(f"  {name}: {outcome}")
        report("", times, (cpu_ms() - cpu) / REPEAT)


def post(path: str, fields: dict[str, str]) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
    try:
        connection.request("POST", path, urllib.parse.urlencode(fields),
                           {"Content-Type": "application/x-www-form-urlencoded"})
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200, (response.status, body[:300])
        return body
    finally:
        connection.close()


def get(path: str) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
    try:
        connection.request("GET", path)
        return connection.getresponse().read()
    finally:
        connection.close()


def gunicorn() -> None:
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "65536"}
    server = subprocess.Popen(
        [str(Path(PY).parent / "gunicorn"), "koopsite.wsgi", "-b", f"127.0.0.1:{PORT}", "-w", "1",
         "--threads", "4", "-k", "gthread", "--timeout", "120", "--log-level", "warning"],
        cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get("/rest/info")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        get(QUERY + "?where=1%3D1&resultRecordCount=1")
        worker = int(Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()[0])
        print(f"gunicorn -w 1 --threads 4 -k gthread, HTTP on 127.0.0.1, {REPEAT} runs each")
        for n in (10_000, 100_000):
            ids = id_list(n)
            for name, params in SHAPES.items():
                cpu = cpu_ms(worker)
                times = [timed(lambda p=params, i=ids: post(QUERY, {**p, "objectIds": i}))[0]
                         for _ in range(REPEAT)]
                report(f"{n:,} ids, {name}", times, (cpu_ms(worker) - cpu) / REPEAT)
        concurrent(8, id_list(10_000))
    finally:
        server.terminate()
        server.wait(timeout=30)


def concurrent(clients: int, ids: str) -> None:
    results: list[float] = []
    probes: list[float] = []
    done = threading.Event()

    def worker() -> None:
        ms, _ = timed(lambda: post(QUERY, {"objectIds": ids, "outFields": "*", "f": "json"}))
        results.append(ms)

    def probe() -> None:
        while not done.is_set():
            probes.append(timed(lambda: get("/rest/info"))[0])
            time.sleep(0.1)

    prober = threading.Thread(target=probe)
    prober.start()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = (time.perf_counter() - started) * 1000
    done.set()
    prober.join()
    print(f"  {clients} concurrent POSTs of 10,000 ids (features page): all answered in "
          f"{wall:.0f} ms; each median {statistics.median(results):.0f} ms, max "
          f"{max(results):.0f} ms; /rest/info meanwhile: {len(probes)} probes, slowest "
          f"{max(probes):.0f} ms")


if __name__ == "__main__":
    part = sys.argv[1] if len(sys.argv) > 1 else "all"
    ensure_data()
    if part in ("all", "inprocess"):
        inprocess()
    if part in ("all", "where"):
        where()
    if part in ("all", "gunicorn"):
        gunicorn()
