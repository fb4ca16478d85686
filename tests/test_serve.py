"""The web server of `make run` and compose (scripts/serve): slow clients, limits, load.

The site runs in its own process exactly as `make run` starts it (production settings, DEBUG
off, the demo datasets); everything goes to 127.0.0.1. The slow sockets' header interval
(KOOP_TEST_SLOW_INTERVAL, 2 s; bench/serve.py uses 10 s) is longer than any per-read wait of a
server thread (waitress's threads never read from a socket; gunicorn's sync worker would block
on each read) and shorter than waitress's only timer, 60 s of silence on a socket, so every
slow socket stays open for the whole test: the worst case, and the test checks it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from koop_app.siteload import (
    ROOT,
    ServedSite,
    SlowSockets,
    arcgis_paths,
    get,
    run_load,
    timed_get,
)

pytestmark = pytest.mark.slow
SLOW_INTERVAL = float(os.environ.get("KOOP_TEST_SLOW_INTERVAL", "2"))
LIMIT_S = 1.0


def site_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """`make run`'s environment: production settings on a fresh folder, nothing inherited."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DJANGO_", "KOOP_", "REDIS_", "CELERY_", "DATABASE_"))}
    return {**env, "DJANGO_SETTINGS_MODULE": "koopsite.settings", "KOOP_VAR_DIR": str(var_dir),
            "KOOP_LOG_LEVEL": "WARNING", **extra}


def prepare(env: dict[str, str]) -> None:
    for command in (["migrate", "--noinput", "-v0"], ["koop_demo"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[ServedSite]:
    var_dir = tmp_path_factory.mktemp("served")
    env = site_env(var_dir, CELERY_BROKER_URL="memory://")
    prepare(env)
    with ServedSite(env, log=var_dir / "server.log") as served:
        for path in arcgis_paths(0):  # load the data once, outside the timed part
            get(served.port, path, timeout=30)
        yield served


PROBES = ["/rest/info?f=json", "/geojson/rest/services/places/FeatureServer/0?f=json",
          "/geojson/rest/services/places/FeatureServer/0/query?where=visitors%3E100"
          "&resultRecordCount=20&f=json", "/admin/login/", "/static/admin/css/base.css"]


def test_fifty_slow_sockets_do_not_delay_other_clients(site):
    seconds = max(3 * SLOW_INTERVAL, 6.0)
    with SlowSockets(site.port, count=50, interval=SLOW_INTERVAL) as slow:
        assert slow.open_now == 50
        times: list[tuple[str, int, float]] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for path in PROBES:
                status, _, elapsed = timed_get(site.port, path)
                times.append((path, status, elapsed))
            time.sleep(0.1)
        held = slow.open_now
    assert all(status == 200 for _, status, _ in times), times
    slowest = max(times, key=lambda row: row[2])
    assert slowest[2] < LIMIT_S, slowest
    assert held == 50  # the slow sockets were there all along (none closed and reopened)


def test_debug_is_off_and_the_admin_is_styled(site):
    status, body = get(site.port, "/no/such/page")
    assert status == 404
    assert b"URLconf" not in body and b"urlpatterns" not in body
    status, body = get(site.port, "/static/admin/css/base.css")
    assert status == 200 and b"body" in body


def test_request_heads_up_to_the_servers_limit_reach_the_app(site):
    status, body = get(site.port, "/rest/info?f=json&pad=" + "x" * 64 * 1024)
    assert status == 200 and body.startswith(b"{")  # the app answered, not the server
    status, body = get(site.port, "/rest/info?pad=" + "x" * 300 * 1024)
    assert status == 431  # past KOOP_WEB_MAX_HEAD_BYTES the server refuses the head itself
    assert orjson.loads(body)["error"]["code"] == 431  # as JSON that ArcGIS clients can read


def test_a_body_past_the_servers_limit_is_refused_before_it_is_sent(site):
    # A 200 MB multipart upload announced by its head: the server answers from Content-Length
    # alone, in the GeoServices shape, without waiting for (or storing) the body.
    with socket.create_connection(("127.0.0.1", site.port), timeout=5) as conn:
        conn.sendall(b"POST /geojson/rest/services/places/FeatureServer/0/query HTTP/1.1\r\n"
                     b"Host: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                     b"Content-Length: 209715200\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    error = orjson.loads(body)["error"]
    assert error["code"] == 413 and error["message"] == "Request Entity Too Large"


@pytest.fixture
def redis_site(tmp_path, redis_server) -> Iterator[ServedSite]:
    env = site_env(tmp_path, REDIS_URL=redis_server.url, CELERY_BROKER_URL="memory://")
    prepare(env)
    with ServedSite(env, log=tmp_path / "server.log") as served:
        yield served


def test_load_with_a_refresh_and_a_redis_restart_has_no_errors(redis_site, redis_server):
    site = redis_site
    clients = int(os.environ.get("KOOP_TEST_LOAD_CLIENTS", "20"))
    seconds = float(os.environ.get("KOOP_TEST_LOAD_SECONDS", "15"))
    result = run_load(site, redis_server, clients, seconds, SLOW_INTERVAL)
    assert result["events"] == ["refreshed", "redis restarted"]
    assert result["errors"] == 0, result
    assert result["requests"] > clients


def worker_processes(marker: str) -> dict[int, int]:
    """pid -> parent pid of the Celery processes whose command line holds ``marker``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if "celery" in cmdline and marker in cmdline:
            found[int(entry.name)] = parent
    return found


def test_make_run_starts_a_killed_worker_again(tmp_path):
    env = site_env(tmp_path, KOOP_WORKER_RESTART_DELAY="0.5")
    prepare(env)
    marker = str(tmp_path / "celerybeat-schedule")
    process = subprocess.Popen([str(ROOT / "scripts" / "run-embedded"), sys.executable,
                                "127.0.0.1:0"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT, start_new_session=True)

    def main_worker() -> int | None:
        processes = worker_processes(marker)
        mains = [pid for pid, parent in processes.items() if parent not in processes]
        return mains[0] if len(mains) == 1 and len(processes) == 2 else None  # worker + beat

    try:
        deadline = time.monotonic() + 60
        while main_worker() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        first = main_worker()
        assert first is not None, worker_processes(marker)
        os.kill(first, 9)
        deadline = time.monotonic() + 60
        while main_worker() in (None, first) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert main_worker() not in (None, first)  # a new worker, and the old beat is gone
    finally:
        process.terminate()
        process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while worker_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert worker_processes(marker) == {}  # stopping make run stops its worker too


def test_several_workers_share_one_hot_file_and_stop_together(tmp_path):
    """KOOP_WEB_WORKERS=2: two waitress processes on one socket, one file per layer version."""
    env = site_env(tmp_path, CELERY_BROKER_URL="memory://", KOOP_WEB_WORKERS="2",
                   KOOP_WEB_THREADS="2")
    prepare(env)
    places = ("/geojson/rest/services/places/FeatureServer/0/query?where=1%3D1"
              "&returnCountOnly=true&f=json")
    with ServedSite(env) as served:
        seen: dict[int, dict] = {}
        deadline = time.monotonic() + 60
        while len(seen) < 2 and time.monotonic() < deadline:
            status, body = get(served.port, places, timeout=30)
            assert status == 200 and "count" in orjson.loads(body)
            process = orjson.loads(get(served.port, "/health", timeout=10)[1])["process"]
            if process["hot_tables"]["tables"]:
                seen[process["pid"]] = process["hot_tables"]
        assert len(seen) == 2 and all(t["attached_files"] >= 1 for t in seen.values())
        assert len(list((tmp_path / "hot").glob("*/*.duckdb"))) == 1
        pids = list(seen)
    for pid in pids:  # stopping the server stopped its workers
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(
            f"/proc/{pid}/status").read_text()
