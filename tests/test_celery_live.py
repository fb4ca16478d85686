"""A real Celery worker with beat (database scheduler), Redis as broker and data cache.

The worker runs in its own process on the test database (a file) and refreshes datasets on
their schedule; the test process only writes the source and watches the dataset's state.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from koop_app.models import Dataset
from koopsite.celery import app as celery_app
from tests.conftest import collection, feature, point, write_json

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
        broker = {"broker_url": redis_server.url}
    else:  # same file cache and broker folder as this process: both under KOOP_VAR_DIR
        queue = Path(os.environ["KOOP_VAR_DIR"]) / "broker" / "queue"
        queue.mkdir(parents=True, exist_ok=True)
        env.update(CELERY_BROKER_URL="filesystem://")
        broker = {"broker_url": "filesystem://", "broker_transport_options": {
            "data_folder_in": str(queue), "data_folder_out": str(queue),
            "store_processed": False}}
    previous = (celery_app.conf.broker_url, celery_app.conf.task_always_eager,
                celery_app.conf.broker_transport_options)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "koopsite", "worker", "-B",
             "--pool", "solo", "--loglevel", "INFO", "-s", str(tmp_path / "beat"),
             "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        celery_app.conf.update(task_always_eager=False, **broker)
        wait_for(lambda: b"ready" in log.read_bytes(), what="the worker to be ready")
        yield log
    finally:
        celery_app.conf.update(broker_url=previous[0], task_always_eager=previous[1],
                               broker_transport_options=previous[2])
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
    refresh_dataset.delay(dataset.pk)
    wait_for(lambda: Dataset.objects.get(pk=dataset.pk).feature_count == 3,
             what="the queued refresh")
    assert b"refresh_dataset" in worker.read_bytes()
