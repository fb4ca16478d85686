"""One fetch for 20 concurrent first requests coming from several processes (real Redis)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from django.db import connection

from tests.conftest import collection, feature, point

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
PROCESSES, THREADS = 4, 5

CLIENT = """
import os, sys, threading, django
django.setup()
from koop_app import data
from koop_app.models import Dataset
dataset = Dataset.objects.select_related("provider").get(dataset_id=sys.argv[1])
counts, errors = [], []
def ask():
    try:
        counts.append(data.get_table(dataset, data.provider_request(dataset)).count)
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=ask) for _ in range(int(sys.argv[2]))]
for t in threads: t.start()
for t in threads: t.join()
print(counts, errors)
"""


@pytest.mark.django_db(transaction=True)
def test_a_miss_fetches_once_for_many_processes(make_dataset, source_server, redis_server,
                                                 settings):
    body = orjson.dumps(collection([feature({"n": i}, point(i, i)) for i in range(7)]))
    url = source_server.route("/slow-source.geojson", body=body, delay=2)
    make_dataset("geojson", "flight", options={"source": url})
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings",
           "REDIS_URL": redis_server.url, "KOOP_TEST_READ_TIMEOUT": "20",
           "DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}"}
    clients = [subprocess.Popen([sys.executable, "-c", CLIENT, "flight", str(THREADS)], cwd=ROOT,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(PROCESSES)]
    outputs = [c.communicate(timeout=120) for c in clients]
    for out, err in outputs:
        assert out.strip().endswith("[]"), (out, err[-2000:])  # no errors
        assert out.count("7") == THREADS, out
    assert source_server.hits["/slow-source.geojson"] == 1
