"""A local Elasticsearch (fake_es.py) with two indices, and the same data as GeoJSON files.

``places``: points with keyword, text (+ keyword sub-field), integer, long, double, date and
boolean fields, some values missing; ``parcels``: polygons in a geo_shape field. The GeoJSON
twins are served by the cached geojson provider, for comparing answers query by query.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from typing import Any

import pytest

from koop_app.models import Provider
from providers.elasticsearch.provider import forget_mappings

from .fake_es import FakeElasticsearch

API_KEY = "c2VjcmV0LWFwaS1rZXktdmFsdWU="  # what the fake cluster accepts
PASSWORD = "hunter2-not-in-logs"

PLACES_MAPPING: dict[str, Any] = {
    "oid": {"type": "integer"},
    "name": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}},
    "kind": {"type": "keyword"},
    "pop": {"type": "integer"},
    "big": {"type": "long"},
    "score": {"type": "double"},
    "founded": {"type": "date"},
    "active": {"type": "boolean"},
    "location": {"type": "geo_point"},
    "meta": {"type": "object", "properties": {"note": {"type": "keyword"}}},
}
PARCELS_MAPPING: dict[str, Any] = {
    "pid": {"type": "long"},
    "zone": {"type": "keyword"},
    "area": {"type": "double"},
    "shape": {"type": "geo_shape"},
}
KINDS = ["City", "town", "Village", "hamlet", "PORT"]
WORDS = ["North", "south", "East", "west", "Old", "new", "Great", "little", "San", "Saint"]


def places(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Documents with a spread of values, nulls and odd text (%, _, quotes, case)."""
    rng = random.Random(seed)
    out = []
    for number in range(1, count + 1):
        name = f"{rng.choice(WORDS)} {rng.choice(WORDS).lower()}{number % 17}"
        if number % 41 == 0:
            name = f"100% pure_{number}"
        if number % 53 == 0:
            name = f"O'Brien {number}"
        founded = dt.datetime(1900, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
            days=rng.randrange(0, 45_000), seconds=rng.randrange(0, 86_400))
        document: dict[str, Any] = {
            "oid": number,
            "name": name,
            "kind": rng.choice(KINDS),
            "pop": rng.randrange(0, 100_000),
            "big": rng.randrange(0, 10**12),
            "score": round(rng.uniform(-50, 50), 3),
            "founded": founded.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "active": rng.random() < 0.6,
            "location": {"lat": round(rng.uniform(-60, 70), 5),
                         "lon": round(rng.uniform(-170, 170), 5)},
        }
        if number % 7 == 0:
            document["pop"] = None
        if number % 11 == 0:
            del document["kind"]
        if number % 13 == 0:
            document["score"] = None
        out.append(document)
    return out


def parcels(count: int, seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for number in range(1, count + 1):
        x, y = rng.uniform(-20, 20), rng.uniform(-20, 20)
        w, h = rng.uniform(0.2, 3), rng.uniform(0.2, 3)
        ring = [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]
        out.append({"pid": number, "zone": rng.choice(["R1", "R2", "C", "I"]),
                    "area": round(w * h, 4), "shape": {"type": "Polygon", "coordinates": [ring]}})
    return out


def as_geojson(documents: list[dict[str, Any]], geometry: str) -> dict[str, Any]:
    """The documents as a FeatureCollection for the geojson provider (the same values)."""
    features = []
    for document in documents:
        properties = {k: v for k, v in document.items() if k not in (geometry, "meta")}
        if "active" in properties:
            properties["active"] = int(properties["active"])
        value = document[geometry]
        shape = ({"type": "Point", "coordinates": [value["lon"], value["lat"]]}
                 if "lat" in value else value)
        features.append({"type": "Feature", "properties": properties, "geometry": shape})
    return {"type": "FeatureCollection", "features": features}


PLACES = places(600)
PARCELS = parcels(300)


@pytest.fixture(scope="session")
def fake_es() -> Iterator[FakeElasticsearch]:
    server = FakeElasticsearch(api_key=API_KEY, user=("reader", PASSWORD),
                               forbidden={"secret"}).start()
    server.add_index("places", PLACES_MAPPING, [(f"p{d['oid']}", d) for d in PLACES],
                     max_result_window=250)
    server.add_index("parcels", PARCELS_MAPPING, [(f"parcel-{d['pid']}", d) for d in PARCELS])
    server.add_index("secret", PARCELS_MAPPING, [])
    server.aliases["towns"] = ["places"]
    yield server
    server.stop()


@pytest.fixture
def cluster(fake_es, settings) -> FakeElasticsearch:
    """The fake cluster configured as connection ``local`` (API key) and ``basic`` (Basic)."""
    forget_mappings()
    fake_es.delay, fake_es.broken = 0.0, False
    settings.KOOP = {
        **settings.KOOP,
        "ALLOWED_SOURCE_NETWORKS": ["127.0.0.1/32"],
        "CONNECTIONS": {"elasticsearch": {
            "local": {"url": fake_es.url, "api_key": API_KEY},
            "basic": {"urls": ["http://127.0.0.1:9", fake_es.url], "username": "reader",
                      "password": PASSWORD},
            "wrong": {"url": fake_es.url, "username": "reader", "password": "nope-" + PASSWORD},
            "limited": {"url": fake_es.url, "api_key": API_KEY, "indices": ["parc*"]},
            "down": {"url": "http://127.0.0.1:9", "api_key": API_KEY},
        }},
    }
    yield fake_es
    forget_mappings()


@pytest.fixture
def es_dataset(cluster, make_dataset):
    """``es_dataset("places", host="local", **options)``: an elasticsearch dataset."""

    def make(index: str, *, host: str = "local", dataset_id: str | None = None,
             **options: Any):
        return make_dataset("elasticsearch", dataset_id or index, None, host=host,
                            options=options or {"max_features": 100_000})

    return make


@pytest.fixture
def twins(es_dataset, make_dataset):
    """The places and parcels indices, pass-through, and their cached GeoJSON twins."""
    Provider.sync_from_registry()
    es_dataset("places", id_field="oid", time_field="founded", max_result_window=250)
    es_dataset("parcels", id_field="pid")
    make_dataset("geojson", "places_cached", as_geojson(PLACES, "location"), id_field="oid",
                 start_time_field="founded")
    make_dataset("geojson", "parcels_cached", as_geojson(PARCELS, "shape"), id_field="pid")
