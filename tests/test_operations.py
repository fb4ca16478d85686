"""Operations: koop_refresh, koop_cache and the health endpoint."""

from __future__ import annotations

import io

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from koop_app import data
from tests.conftest import collection, feature, point

GOOD = collection([feature({"n": 1}, point(1, 1)), feature({"n": 2}, point(2, 2))])


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_refresh_one_all_and_failures(make_dataset):
    make_dataset("geojson", "a", GOOD)
    make_dataset("geojson", "b", GOOD)
    assert "geojson/a: 2 features" in run("koop_refresh", "geojson/a")
    output = run("koop_refresh", "--all")
    assert "geojson/a" in output and "geojson/b" in output
    make_dataset("geojson", "broken", b"{nope")
    with pytest.raises(CommandError, match="1 of 3 refreshes failed"):
        run("koop_refresh", "--all")
    with pytest.raises(CommandError, match="No dataset"):
        run("koop_refresh", "geojson/zzz")
    with pytest.raises(CommandError, match="--all"):
        run("koop_refresh")


@pytest.mark.django_db
def test_cache_state(make_dataset):
    dataset = make_dataset("geojson", "a", GOOD)
    assert "(not cached)" in run("koop_cache")
    run("koop_refresh", str(dataset.pk))
    dataset.refresh_from_db()
    output = run("koop_cache")
    assert dataset.version in output and "geojson/a" in output


@pytest.mark.django_db
def test_health(client):
    body = orjson.loads(client.get("/health").content)
    assert body["ok"] is True
    assert body["database"]["ok"] and body["cache"]["ok"] and body["broker"]["ok"]


@pytest.mark.django_db
def test_health_shows_the_memory_held_by_the_process(client, make_dataset):
    dataset = make_dataset("geojson", "held", collection([feature({"n": 1}, point(0, 0))]))
    before = orjson.loads(client.get("/health").content)["process"]
    assert before["hot_tables"]["tables"] == 0 and before["hot_tables_budget_bytes"] > 0
    data.get_table(dataset, data.provider_request(dataset))
    held = orjson.loads(client.get("/health").content)["process"]["hot_tables"]
    assert held["tables"] == 1 and held["bytes"] > 0


@pytest.mark.django_db
@pytest.mark.expected_server_error(503)  # /health answers 503 when a part is down
def test_health_reports_a_broken_broker(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"  # nothing listens on port 9
    response = client.get("/health")
    body = orjson.loads(response.content)
    assert response.status_code == 503 and body["broker"]["ok"] is False
