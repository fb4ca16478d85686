"""A real Celery worker with beat (database scheduler), Redis as broker and data cache.

The worker runs in its own process on the test database (a file) and refreshes datasets on
their schedule; the test process only writes the source and watches the dataset's state.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from django.db import connection

from koop_app.models import Dataset, RefreshLog
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
    settings.KOOP = {**settings.KOOP, "MIN_REFRESH_SECONDS": 1}
    log = tmp_path / "worker.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings",
           "DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}",
           "KOOP_MIN_REFRESH_SECONDS": "1"}
    if request.param == "redis":
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
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "koopsite", "worker", "-B",
             "--pool", "solo", "--loglevel", "INFO", "-s", str(tmp_path / "beat"),
             "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: b"ready" in log.read_bytes(), what="the worker to be ready")
        yield log
    finally:
        forget_broker_pools()
        process.terminate()
        process.wait(timeout=20)


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
    wait_for(lambda: RefreshLog.objects.filter(dataset=dataset, trigger="admin").exists(),
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
