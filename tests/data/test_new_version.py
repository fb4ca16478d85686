"""A new version stored by one process reaches another process without a restart."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from koop_app import data
from tests.conftest import collection, feature, point, write_json

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

WATCHER = """
import sys, time, django
django.setup()
from koop_app import data
from koop_app.models import Dataset
dataset = Dataset.objects.select_related("provider").get(dataset_id=sys.argv[1])
def version():
    return data.get_table(dataset, data.provider_request(dataset)).version
first = version()
print("first", first, flush=True)
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    current = version()
    if current != first:
        print("new", current, time.time(), flush=True)
        break
    time.sleep(0.05)
"""


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("any_cache")
def test_another_process_serves_the_new_version(make_dataset, data_dir, any_cache):
    dataset = make_dataset("geojson", "versions",
                           collection([feature({"n": 1}, point(0, 0))]), ttl=3600)
    first = data.refresh(dataset)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings",
           "DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}"}
    if any_cache == "redis":
        from django.conf import settings

        env["REDIS_URL"] = settings.CACHES["default"]["LOCATION"]
    watcher = subprocess.Popen([sys.executable, "-c", WATCHER, "versions"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = watcher.stdout.readline().split()
    assert line == ["first", first.version]
    write_json(data_dir / "versions.geojson", collection([feature({"n": 2}, point(0, 0))]))
    second = data.refresh(dataset)
    stored_at = time.time()
    out, err = watcher.communicate(timeout=60)
    _, version, seen_at = out.split()
    assert version == second.version, err[-2000:]
    assert float(seen_at) - stored_at < 2.5  # KOOP["POINTER_CHECK_SECONDS"] is 1
