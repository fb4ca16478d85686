"""A MarkLogic REST server on 127.0.0.1 holding wells as Optic rows and as JSON documents."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from providers.marklogic import client as ml_client
from providers.marklogic import provider as ml_provider
from tests.conftest import collection, feature, point
from tests.providers.marklogic.server import FakeMarkLogic, MarkLogicServer, View

PASSWORD = "s3cret-pw"
STATES = ["CO", "co", "WY", "Texas", None, "NM"]
NAMES = ["Alpha", "beta", "Gamma ray", "delta_1", "Épsilon", "zeta%"]


def well(i: int) -> dict[str, Any]:
    """One well: text with cases, nulls, numbers, dates and a position."""
    spud = dt.datetime(2020, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=17 * i, hours=i % 24)
    return {
        "id": i,
        "name": f"{NAMES[i % len(NAMES)]} {i}",
        "state": STATES[i % len(STATES)],
        "depth": None if i % 7 == 3 else round(100.5 + i * 13.25 - (i % 5) * 40, 2),
        "wells": (i * 37) % 11,
        "spud": spud.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lat": round(35 + (i % 9) * 0.75 + i * 0.01, 4),
        "lon": round(-110 + (i % 13) * 0.9 - i * 0.02, 4),
    }


WELLS = [well(i) for i in range(1, 61)]
COLUMNS = [("id", "xs:int"), ("name", "xs:string"), ("state", "xs:string"),
           ("depth", "xs:double"), ("wells", "xs:int"), ("spud", "xs:dateTime"),
           ("lat", "xs:double"), ("lon", "xs:double")]


def document(w: dict[str, Any]) -> dict[str, Any]:
    """The well as a JSON document: its position under "location"."""
    doc = {k: v for k, v in w.items() if k not in ("lat", "lon")}
    doc["location"] = {"lat": w["lat"], "lon": w["lon"]}
    return doc


@pytest.fixture(autouse=True)
def _forget_marklogic_state() -> Iterator[None]:
    ml_client.forget_challenges()
    ml_provider._layers.clear()
    yield
    ml_client.forget_challenges()
    ml_provider._layers.clear()


@pytest.fixture
def fake() -> FakeMarkLogic:
    server = FakeMarkLogic()
    server.views[("main", "wells")] = View(COLUMNS, [dict(w) for w in WELLS])
    for w in WELLS:
        collections = ("wells", "even") if w["id"] % 2 == 0 else ("wells",)
        server.documents[f"/wells/{w['id']:03d}.json"] = (document(w), collections)
    server.documents["/other/1.json"] = ({"id": 999, "name": "not a well"}, ("other",))
    server.range_indexes = {"id", "depth"}
    server.geo_pairs = {"location"}
    server.geo_paths = {"/location"}
    return server


@pytest.fixture
def marklogic(fake: FakeMarkLogic) -> Iterator[MarkLogicServer]:
    with MarkLogicServer(fake) as server:
        yield server


@pytest.fixture
def connected(settings, marklogic: MarkLogicServer):
    """KOOP["CONNECTIONS"]["marklogic"]["ml"] pointing at the server (Digest, the default)."""

    def configure(**extra: Any) -> dict[str, Any]:
        entry = {"url": marklogic.url, "username": "reader", "password": PASSWORD,
                 "auth": "digest", **extra}
        settings.KOOP = {**settings.KOOP, "CONNECTIONS": {"marklogic": {"ml": entry}}}
        return entry

    configure()
    return configure


ROWS_OPTIONS = {"mode": "rows", "latitude": "lat", "longitude": "lon", "id_field": "id"}
SEARCH_OPTIONS = {"mode": "search", "collection": "wells", "latitude": "location.lat",
                  "longitude": "location.lon", "geo_index": "pair", "id_field": "id",
                  "range_indexes": "id:int,depth:double", "page_size": 7}


@pytest.fixture
def layers(make_dataset, connected):
    """The MarkLogic layers and the same data as cached GeoJSON files, side by side."""
    make_dataset("marklogic", "main.wells", host="ml", options=dict(ROWS_OPTIONS))
    make_dataset("marklogic", "wells", host="ml", options=dict(SEARCH_OPTIONS))
    rows_doc = collection([feature(dict(w), point(w["lon"], w["lat"])) for w in WELLS])
    make_dataset("geojson", "wells_rows", rows_doc, id_field="id")
    search_doc = collection([
        feature({k: v for k, v in w.items() if k not in ("lat", "lon")},
                point(w["lon"], w["lat"])) for w in WELLS])
    make_dataset("geojson", "wells_docs", search_doc, id_field="id")
