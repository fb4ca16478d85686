"""Demo data: deterministic point and polygon layers, written as GeoJSON and CSV files.

    write_demo_files(data_dir)   # -> {"places": "demo/places.geojson", ...}

Points are places across the contiguous United States; polygons are hexagonal regions (some
with a lake as a hole). Every layer has integer, double, string, date and boolean attributes.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import random
from pathlib import Path

import orjson

CATEGORIES = ["Park", "School", "Library", "Museum", "Station", "Market", "Clinic", "Harbor"]
WORDS = ["Cedar", "Maple", "River", "Summit", "Lake", "Prairie", "Canyon", "Harbor", "Pine",
         "Valley", "O'Brien", "Granite"]
LON = (-124.0, -67.0)
LAT = (25.0, 49.0)
EPOCH = dt.datetime(2015, 1, 1, tzinfo=dt.UTC)

DEMO_DATASETS = [
    # (provider, id, file, name, description)
    ("geojson", "places", "demo/places.geojson", "Places",
     "2,000 generated points of interest (GeoJSON provider)."),
    ("geojson", "regions", "demo/regions.geojson", "Regions",
     "Generated hexagonal regions, some with a lake as a hole (GeoJSON provider)."),
    ("csv", "stations", "demo/stations.csv", "Stations",
     "500 generated weather stations from latitude/longitude columns (CSV provider)."),
    ("csv", "zones", "demo/zones.csv", "Zones",
     "Generated rectangular zones from a WKT column (CSV provider)."),
]


def _name(rng: random.Random, index: int) -> str:
    return f"{rng.choice(WORDS)} {rng.choice(CATEGORIES)} {index}"


def _moment(rng: random.Random) -> str:
    moment = EPOCH + dt.timedelta(seconds=rng.randrange(0, 10 * 365 * 86400))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def places(count: int = 2000, seed: int = 1) -> dict:
    rng = random.Random(seed)
    features = []
    for index in range(1, count + 1):
        features.append({
            "type": "Feature",
            "properties": {
                "name": _name(rng, index),
                "category": rng.choice(CATEGORIES),
                "rating": round(rng.uniform(0, 5), 2),
                "visitors": int(rng.paretovariate(1.5) * 100),
                "opened": _moment(rng),
                "accessible": rng.random() < 0.7,
            },
            "geometry": {"type": "Point", "coordinates": [
                round(rng.uniform(*LON), 5), round(rng.uniform(*LAT), 5)]},
        })
    return {"type": "FeatureCollection", "features": features}


def _hexagon(cx: float, cy: float, r: float, clockwise: bool = False) -> list[list[float]]:
    angles = range(0, 360, 60) if not clockwise else range(360, 0, -60)
    ring = [[round(cx + r * math.cos(math.radians(a)), 5),
             round(cy + r * math.sin(math.radians(a)), 5)] for a in angles]
    return ring + [ring[0]]


def regions(seed: int = 2) -> dict:
    rng = random.Random(seed)
    features = []
    r = 1.2
    index = 0
    y = LAT[0] + r
    row = 0
    while y < LAT[1] - r:
        x = LON[0] + r + (r * 0.866 if row % 2 else 0)
        while x < LON[1] - r:
            index += 1
            rings = [_hexagon(x, y, r * 0.98)]
            if index % 7 == 0:
                rings.append(_hexagon(x, y, r * 0.3, clockwise=True))  # a lake
            features.append({
                "type": "Feature",
                "properties": {
                    "name": f"Region {index}",
                    "population": rng.randrange(1_000, 2_000_000),
                    "density": round(rng.uniform(1, 900), 1),
                    "established": _moment(rng)[:10],
                    "coastal": x < -120 or x > -76,
                },
                "geometry": {"type": "Polygon", "coordinates": rings},
            })
            x += 2 * r * 0.866
        y += 1.5 * r
        row += 1
    return {"type": "FeatureCollection", "features": features}


def stations_rows(count: int = 500, seed: int = 3) -> list[list[object]]:
    rng = random.Random(seed)
    rows: list[list[object]] = [["station", "latitude", "longitude", "elevation_m", "installed",
                                 "active", "readings"]]
    for index in range(1, count + 1):
        rows.append([
            f"ST-{index:04d} {rng.choice(WORDS)}",
            round(rng.uniform(*LAT), 5),
            round(rng.uniform(*LON), 5),
            round(rng.uniform(-50, 3500), 1),
            _moment(rng)[:10],
            "true" if rng.random() < 0.8 else "false",
            rng.randrange(0, 100_000),
        ])
    return rows


def zones_rows(seed: int = 4) -> list[list[object]]:
    rng = random.Random(seed)
    rows: list[list[object]] = [["zone", "rate", "wkt"]]
    index = 0
    for x in range(-124, -67, 6):
        for y in range(25, 49, 6):
            index += 1
            x2, y2 = x + 5.5, y + 5.5
            wkt = f"POLYGON(({x} {y}, {x2} {y}, {x2} {y2}, {x} {y2}, {x} {y}))"
            rows.append([f"Zone {index}", round(rng.uniform(0, 20), 2), wkt])
    return rows


def write_demo_files(data_dir: Path) -> None:
    folder = Path(data_dir) / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "places.geojson").write_bytes(orjson.dumps(places()))
    (folder / "regions.geojson").write_bytes(orjson.dumps(regions()))
    for name, rows in (("stations.csv", stations_rows()), ("zones.csv", zones_rows())):
        with open(folder / name, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)
