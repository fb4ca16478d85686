"""A real PostgreSQL + PostGIS for the postgis provider's tests, and the same rows as GeoJSON.

One throwaway cluster for all of this folder's modules (tests/postgres.py), on a free
loopback port picked when it starts (retried if another run took it meanwhile), in its own
temporary folder: two test runs never share one. Each test module gets its own copy of the
loaded database (``CREATE DATABASE ... TEMPLATE``): what one module changes, no other sees.
``pg`` also writes the rows as a GeoJSON file, served cached by the geojson provider, so
answers can be compared one to one.
"""

from __future__ import annotations

import datetime as dt
import random
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from koop_app.models import Dataset, Provider
from koop_app.testing import free_port
from providers.postgis import catalog, pools
from tests.conftest import write_json
from tests.postgres import Postgres

PASSWORD = "s3cr3t-Pa55word"
KINDS = ["Oak", "oak", "Pine", "PINE", "birch", "Élan", None]
WORDS = ["alpha", "Beta", "gamma", "DELTA", "epsilon", "zeta%", "eta_x", "theta\\n", None]
COUNT = 240


@dataclass
class Cluster:
    pg: Postgres
    dsn: str  # without the password (given separately, as an operator would)
    url: str  # with it, for the tests' own setup

    def connection_settings(self, **extra: Any) -> dict[str, Any]:
        return {"dsn": self.dsn, "password": PASSWORD, "pool_size": 2, **extra}


def _start() -> Postgres:
    last: Exception | None = None
    for _ in range(3):  # a port picked free may be taken by another run before we bind it
        pg = Postgres(free_port(), "koop", PASSWORD, "gis")
        try:
            return pg.start()
        except subprocess.CalledProcessError as exc:
            pg.stop()
            last = exc
    raise RuntimeError("PostgreSQL did not start") from last


def rows() -> list[dict[str, Any]]:
    """The test rows: deterministic, with nulls, cases, wildcards and dates."""
    rng = random.Random(12)
    out = []
    base = dt.datetime(2019, 1, 1, tzinfo=dt.UTC)
    for i in range(1, COUNT + 1):
        out.append({
            "gid": i,
            "name": rng.choice(WORDS),
            "kind": rng.choice(KINDS),
            "value": round(rng.uniform(-10, 110), 3) if i % 17 else None,
            "amount": rng.randint(0, 50),
            "big": rng.randint(0, 5_000_000_000),
            "flag": rng.random() < 0.4,
            "day": (base + dt.timedelta(days=rng.randint(0, 900))).date(),
            "seen": base + dt.timedelta(seconds=rng.randint(0, 3 * 365 * 86400)),
            "x": round(rng.uniform(-20, 20), 6),
            "y": round(rng.uniform(30, 60), 6),
        })
    return out


def _schema(conn: psycopg.Connection) -> None:
    conn.execute("""
        CREATE TABLE public.places (
            gid integer PRIMARY KEY, name text, kind varchar(20), value double precision,
            amount integer, big bigint, flag boolean, day date, seen timestamptz,
            geom geometry(Point, 4326));
        CREATE INDEX places_geom ON public.places USING gist (geom);
        CREATE TABLE public.zones (
            zid integer PRIMARY KEY, label text, area_m2 numeric,
            geom geometry(Polygon, 3857));
        CREATE INDEX zones_geom ON public.zones USING gist (geom);
        CREATE TABLE public.readings (rid integer PRIMARY KEY, station text, reading real);
        CREATE TABLE public.nokey (label text, geom geometry(Point, 4326));
        CREATE SCHEMA hidden;
        CREATE TABLE hidden.secrets (id integer PRIMARY KEY, geom geometry(Point, 4326));
    """)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO public.places VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, "
            "ST_SetSRID(ST_MakePoint(%s, %s), 4326))",
            [(r["gid"], r["name"], r["kind"], r["value"], r["amount"], r["big"], r["flag"],
              r["day"], r["seen"], r["x"], r["y"]) for r in rows()])
        # Squares around a grid of centres, stored in Web Mercator.
        cur.executemany(
            "INSERT INTO public.zones VALUES (%s, %s, %s, ST_Transform(ST_Expand("
            "ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s), 3857))",
            [(i + 1, f"zone {i + 1}", 1000.5 * (i + 1), -15 + (i % 6) * 6, 32 + (i // 6) * 6,
              1.5 + (i % 3) * 0.5) for i in range(24)])
        cur.executemany("INSERT INTO public.readings VALUES (%s, %s, %s)",
                        [(i, f"st{i % 4}", i * 1.5) for i in range(1, 21)])
        cur.executemany("INSERT INTO public.nokey VALUES (%s, ST_SetSRID(ST_MakePoint(%s, %s), "
                        "4326))", [(f"n{i}", i, i) for i in range(5)])
    conn.execute("ANALYZE")


@pytest.fixture(scope="package")
def postgis_server() -> Iterator[Postgres]:
    """The cluster of every postgis test module, its database ``gis`` loaded once: the
    modules' template. Package scope: stopped when the last postgis module is done."""
    pg = _start()
    try:
        with psycopg.connect(pg.url("gis"), autocommit=True) as conn:
            _schema(conn)
        yield pg
    finally:
        pg.stop()


@pytest.fixture(scope="module")
def cluster(request, postgis_server: Postgres) -> Iterator[Cluster]:
    """This module's own database, a copy of the loaded ``gis`` (a file copy: fast)."""
    database = f"gis_{request.module.__name__.rsplit('.', 1)[-1]}"
    admin = postgis_server.url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
        conn.execute(f'CREATE DATABASE "{database}" TEMPLATE gis')
    try:
        dsn = f"postgresql://koop@127.0.0.1:{postgis_server.port}/{database}"
        yield Cluster(postgis_server, dsn, postgis_server.url(database))
    finally:
        pools.close_all()
        catalog.forget()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture
def connections(settings, cluster):
    """KOOP["CONNECTIONS"]["postgis"]: "gis" (the cluster, with named queries) and others."""
    queries = {
        "big_values": "SELECT gid, name, value, geom FROM public.places WHERE value > 50",
        "kinds": {"sql": "SELECT kind, count(*) AS n, min(gid) AS first FROM public.places "
                         "GROUP BY kind", "id_field": "first"},
    }
    settings.KOOP = {**settings.KOOP, "CONNECTIONS": {"postgis": {
        "gis": cluster.connection_settings(queries=queries),
        "public_only": cluster.connection_settings(schemas=["public"]),
    }}}
    yield settings.KOOP["CONNECTIONS"]["postgis"]
    pools.close_all()
    catalog.forget()


@pytest.fixture
def postgis_dataset(db, connections):
    """``postgis_dataset("public.places", host="gis", **fields)``: a registered dataset."""

    def make(layer: str, host: str = "gis", **fields: Any) -> Dataset:
        provider = {p.name: p for p in Provider.sync_from_registry()}["postgis"]
        dataset = Dataset(provider=provider, host=host, dataset_id=layer, options={},
                          **fields)
        dataset.full_clean()
        dataset.save()
        return dataset

    return make


def geojson_of_places() -> dict[str, Any]:
    """The places as the geojson provider would read them from a file (dates as ISO text)."""
    features = []
    for r in rows():
        properties = {k: v for k, v in r.items() if k not in ("x", "y")}
        properties["day"] = r["day"].isoformat()
        properties["seen"] = r["seen"].isoformat()
        features.append({"type": "Feature", "properties": properties,
                         "geometry": {"type": "Point", "coordinates": [r["x"], r["y"]]}})
    return {"type": "FeatureCollection", "features": features}


@pytest.fixture
def twins(postgis_dataset, make_dataset, data_dir):
    """The places served both ways: postgis pass-through and geojson cached."""
    write_json(data_dir / "places.geojson", geojson_of_places())
    make_dataset("geojson", "places", None, options={"source": "places.geojson"},
                 id_field="gid")
    return postgis_dataset("public.places")
