"""/health says "degraded", with its reasons, while queries still work."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import orjson
import pytest
from django.db import connection
from django.utils import timezone

from koop_app.data import recorder
from koop_app.models import RefreshLog


def health(client) -> dict:
    response = client.get("/health")
    assert response.status_code == 200
    return orjson.loads(response.content)


@pytest.mark.django_db
def test_ok_without_reasons(client):
    body = health(client)
    assert (body["status"], body["reasons"]) == ("ok", [])


@pytest.mark.django_db
def test_a_stuck_refresh_degrades(client, make_dataset, settings):
    settings.KOOP = {**settings.KOOP, "REFRESH_STUCK_SECONDS": 60}
    dataset = make_dataset("geojson", "stuck")
    row = recorder.open_row(dataset, "admin")
    assert health(client)["status"] == "ok"
    RefreshLog.objects.filter(pk=row.pk).update(phase="fetch",
                                                progressed=timezone.now() - timedelta(minutes=5))
    body = health(client)
    assert body["status"] == "degraded"
    assert body["reasons"] == ["the refresh of geojson/stuck made no progress for 60 s "
                               "(phase fetch)"]


@pytest.mark.django_db(transaction=True)
def test_a_database_locked_for_writes_degrades(client):
    holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a long write transaction elsewhere
    try:
        body = health(client)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert body["status"] == "degraded" and body["ok"] is True
    assert "stayed locked for writes" in body["reasons"][0]
    assert health(client)["status"] == "ok"
