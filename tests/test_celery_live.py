"""A real Celery worker with beat (database scheduler), Redis as broker and data cache.

The worker runs in its own process on the test database (a file) and refreshes datasets on
their schedule; the test process only writes the source and watches the dataset's state.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from django.db import connection

from koop_app.models import Dataset, RefreshLog
from koop_app.workers import forget as forget_workers
from koopsite.celery import app as celery_app
from tests.conftest import age_copy, collection, feature, point, write_json

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def doc(n: int) -> dict:
    return collection([feature({"n": i}, point(i, i)) for i in range(n)])


def wait_for(condition, timeout: float = 45.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def forget_broker_pools() -> None:
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture(params=["redis", "filesystem"])
def worker(request, transactional_db, settings, tmp_path):
    """A worker with beat: on Redis (production), or on the embedded filesystem broker."""
    yield from live_worker(request, settings, tmp_path, request.param, ("-B", "--pool", "solo"))


@pytest.fixture
def prefork_worker(request, transactional_db, settings, tmp_path):
    """Compose's shape: a prefork pool (one child) on Redis, beat elsewhere."""
    yield from live_worker(request, settings, tmp_path, "redis", ("--pool", "prefork", "-c", "1"))


def live_worker(request, settings, tmp_path, broker: str, pool: tuple[str, ...]):
    settings.KOOP = {**settings.KOOP, "MIN_REFRESH_SECONDS": 1}
    log = tmp_path / "worker.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings",
           "DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}",
           "KOOP_MIN_REFRESH_SECONDS": "1",
           "KOOP_TEST_READ_TIMEOUT": "10"}  # slow sources keep a refresh running long enough
    if broker == "redis":
        redis_server = request.getfixturevalue("redis_server")
        settings.CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache",
                                       "LOCATION": redis_server.url,
                                       "OPTIONS": {"IGNORE_EXCEPTIONS": True}}}
        env.update(REDIS_URL=redis_server.url, CELERY_BROKER_URL=redis_server.url)
        settings.CELERY_BROKER_URL = redis_server.url
    else:  # same file cache and broker folder as this process: both under KOOP_VAR_DIR
        queue = Path(os.environ["KOOP_VAR_DIR"]) / "broker" / "queue"
        queue.mkdir(parents=True, exist_ok=True)
        env.update(CELERY_BROKER_URL="filesystem://")
        settings.CELERY_BROKER_URL = "filesystem://"
        settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
            "data_folder_in": str(queue), "data_folder_out": str(queue),
            "store_processed": False, "control_folder": str(queue.parent / "control")}
    # This process queues tasks on the same broker: Celery reads CELERY_* Django settings
    # live, but its connection and producer pools keep the broker they were made for.
    settings.CELERY_TASK_ALWAYS_EAGER = False
    forget_broker_pools()
    forget_workers()
    worker = LiveWorker(env, log, tmp_path / "beat", pool)
    try:
        yield worker.start()
    finally:
        forget_broker_pools()
        forget_workers()
        worker.stop()


class LiveWorker:
    """``celery worker -B --pool solo`` as `make run` starts it, with a fixed node name."""

    def __init__(self, env: dict[str, str], log: Path, beat_file: Path,
                 pool: tuple[str, ...] = ("-B", "--pool", "solo")) -> None:
        self.env, self.log, self.beat_file, self.pool = env, log, beat_file, pool
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> LiveWorker:
        ready_before = self.read_bytes().count(b"ready.")
        with open(self.log, "ab") as out:
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "koopsite", "worker", *self.pool,
                 "-n", "live@%h", "--loglevel", "INFO",
                 "-s", str(self.beat_file), "--without-gossip", "--without-mingle"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True))
        wait_for(lambda: self.read_bytes().count(b"ready.") > ready_before,
                 what="the worker to be ready")
        return self

    def kill(self) -> None:
        """SIGKILL the worker's main process only, as an out-of-memory kill would."""
        process = self.processes[-1]
        process.kill()
        process.wait(timeout=20)

    def read_bytes(self) -> bytes:
        return self.log.read_bytes() if self.log.exists() else b""

    def stop(self) -> None:
        for process in self.processes:  # and what they left running (the embedded beat)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def test_beat_refreshes_before_the_ttl_runs_out(worker, make_dataset, data_dir):
    dataset = make_dataset("geojson", "live", doc(2), ttl=2)

    def version() -> str:
        return Dataset.objects.get(pk=dataset.pk).version

    wait_for(lambda: version() != "", what="a first scheduled refresh")
    first = version()
    write_json(data_dir / "live.geojson", doc(5))
    wait_for(lambda: version() not in ("", first), what="a refresh of the changed source")
    assert Dataset.objects.get(pk=dataset.pk).feature_count == 5


def test_queued_refresh_runs_on_the_worker(worker, make_dataset):
    from koop_app.tasks import refresh_dataset

    dataset = make_dataset("geojson", "queued", doc(3), ttl=3600)
    refresh_dataset.delay(dataset.pk, trigger="admin")
    wait_for(lambda: RefreshLog.objects.filter(dataset=dataset, trigger="admin",
                                               state=RefreshLog.DONE).exists(),
             what="the queued refresh")
    assert Dataset.objects.get(pk=dataset.pk).feature_count == 3
    assert b'"trigger":"admin"' in worker.read_bytes()  # the worker's own log line


def test_an_expired_copy_is_served_while_the_worker_refreshes_it(worker, make_dataset,
                                                                  source_server, settings):
    from koop_app import data

    sizes = itertools.count(2)
    url = source_server.route("/live-slow.geojson", delay=1.0,
                              body=lambda query: orjson.dumps(doc(next(sizes))))
    dataset = make_dataset("geojson", "liveslow", None, options={"source": url}, ttl=3600)
    first = data.get_table(dataset, data.provider_request(dataset))
    settings.KOOP = {**settings.KOOP, "POINTER_CHECK_SECONDS": 0}
    age_copy("geojson::liveslow", 3601)
    clock = time.perf_counter()
    assert data.get_table(dataset, data.provider_request(dataset)).version == first.version
    assert time.perf_counter() - clock < 0.5  # served stale, the refresh queued

    def served_count() -> int:
        return data.get_table(dataset, data.provider_request(dataset)).count

    wait_for(lambda: served_count() > first.count, what="the worker's refresh to be served")
    assert RefreshLog.objects.filter(dataset=dataset, trigger="stale", ok=True).exists()


def test_a_refresh_killed_with_its_worker_runs_again(worker, make_dataset, source_server):
    from koop_app.tasks import refresh_dataset

    url = source_server.route_slowly(f"/killed-{worker.log.parent.name}.geojson",
                                     orjson.dumps(doc(4)), 4.0, pieces=8)
    dataset = make_dataset("geojson", "killed", None, options={"source": url}, ttl=3600)
    task = refresh_dataset.delay(dataset.pk, trigger="admin")
    rows = RefreshLog.objects.filter(dataset=dataset)
    wait_for(lambda: rows.filter(state=RefreshLog.RUNNING).exists(), what="the refresh to start")
    worker.kill()
    worker.start()  # what make run's supervising loop does
    wait_for(lambda: rows.filter(state=RefreshLog.DONE, ok=True).exists(),
             what="the refresh to run again")
    history = {(row.state, row.ok, row.task_id) for row in rows}
    assert history == {(RefreshLog.INTERRUPTED, False, task.id),
                       (RefreshLog.DONE, True, task.id)}
    assert Dataset.objects.get(pk=dataset.pk).feature_count == 4
    assert b"refresh.interrupted" in worker.read_bytes()


def test_health_and_the_admin_see_a_missing_worker(worker, make_dataset, admin_client, client):
    from django.urls import reverse

    body = orjson.loads(client.get("/health").content)
    assert body["workers"]["ok"] is True and body["warnings"] == []
    dataset = make_dataset("geojson", "adminq", doc(2), ttl=3600)
    page = admin_client.post(reverse("admin:koop_app_dataset_changelist"),
                             {"action": "refresh_now", "_selected_action": [dataset.pk]},
                             follow=True).content.decode()
    assert "Queued the refresh of 1 dataset" in page

    worker.kill()
    forget_workers()
    response = client.get("/health")
    body = orjson.loads(response.content)
    assert response.status_code == 200  # queries still work: only refreshes wait
    assert body["workers"]["ok"] is False and body["warnings"]
    page = admin_client.post(reverse("admin:koop_app_dataset_changelist"),
                             {"action": "refresh_now", "_selected_action": [dataset.pk]},
                             follow=True).content.decode()
    assert "No Celery worker is running" in page
    assert RefreshLog.objects.filter(dataset=dataset, trigger="admin", ok=True).exists()


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()]


def test_a_refresh_whose_pool_process_dies_runs_again_at_once(prefork_worker, make_dataset,
                                                              source_server):
    """Prefork: the main process survives and gives the task back (reject_on_worker_lost)."""
    from koop_app.tasks import refresh_dataset

    url = source_server.route_slowly("/killed-child.geojson", orjson.dumps(doc(3)), 4.0,
                                     pieces=8)
    dataset = make_dataset("geojson", "childkilled", None, options={"source": url}, ttl=3600)
    task = refresh_dataset.delay(dataset.pk, trigger="admin")
    rows = RefreshLog.objects.filter(dataset=dataset)
    wait_for(lambda: rows.filter(state=RefreshLog.RUNNING).exists(), what="the refresh to start")
    main = prefork_worker.processes[-1]
    (child,) = children(main.pid)
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: rows.filter(state=RefreshLog.DONE, ok=True).exists(),
             what="the refresh to run again")
    assert main.poll() is None  # no restart was needed
    history = {(row.state, row.task_id) for row in rows}
    assert history == {(RefreshLog.INTERRUPTED, task.id), (RefreshLog.DONE, task.id)}


@pytest.fixture
def solo_worker(request, transactional_db, settings, tmp_path):
    """A solo worker on Redis, without beat."""
    yield from live_worker(request, settings, tmp_path, "redis", ("--pool", "solo"))


class WriteHolder:
    """Short write transactions one after the other (~100 ms each), as chunked writes hold."""

    def __init__(self, path: str) -> None:
        import threading

        self.path, self.stop, self.held = path, threading.Event(), 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        import sqlite3

        conn = sqlite3.connect(self.path, timeout=20, isolation_level=None)
        while not self.stop.is_set():
            conn.execute("BEGIN IMMEDIATE")
            time.sleep(0.1)
            conn.execute("ROLLBACK")
            self.held += 1
            time.sleep(0.02)
        conn.close()

    def __enter__(self) -> WriteHolder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def test_sqlite_keeps_logins_and_other_datasets_working_during_a_refresh(
        solo_worker, make_dataset, source_server, client, django_user_model, settings):
    """A long refresh on the worker, writes held all along: nobody sees "database is locked"."""
    from django.urls import reverse

    from koop_app.tasks import refresh_dataset

    assert connection.settings_dict["ENGINE"].endswith("sqlite3")
    django_user_model.objects.create_superuser("boss", "", "pw")
    url = source_server.route_slowly("/big-slow.geojson", orjson.dumps(doc(3000)), 6.0,
                                     pieces=8)
    big = make_dataset("geojson", "bigslow", None, options={"source": url}, ttl=3600)
    make_dataset("geojson", "other", doc(3), ttl=3600)
    rows = RefreshLog.objects.filter(dataset=big)
    with WriteHolder(connection.settings_dict["NAME"]) as holder:
        refresh_dataset.delay(big.pk, trigger="admin")
        wait_for(lambda: rows.filter(state=RefreshLog.RUNNING).exists(),
                 what="the refresh to start")
        rounds = 0
        while rows.filter(state=RefreshLog.RUNNING).exists() and rounds < 20:
            login = client.post(reverse("admin:login"),
                                {"username": "boss", "password": "pw", "next": "/admin/"})
            assert login.status_code == 302, login.content[:500]
            client.logout()
            answer = orjson.loads(client.get(
                "/geojson/rest/services/other/FeatureServer/0/query?where=1%3D1&f=json").content)
            assert len(answer["features"]) == 3, answer
            rounds += 1
        assert rounds >= 2  # the refresh ran through several of them
        wait_for(lambda: rows.filter(state=RefreshLog.DONE).exists(), what="the refresh")
    assert holder.held > 10
    assert rows.get().ok, rows.get().error
    assert b"database is locked" not in solo_worker.read_bytes()
    assert Dataset.objects.get(pk=big.pk).feature_count == 3000
