"""Vector tiles of 1,000,000 points: a tile's build time and tiles per second at z6..z14.

    .venv/bin/python bench/vector_tiles.py load                              # generate + refresh
    flock /work/wt/heavy.lock .venv/bin/python bench/vector_tiles.py encode  # in process
    flock /work/wt/heavy.lock .venv/bin/python bench/vector_tiles.py http    # served, c=1

Data ($TILES_DIR, default /tmp/hot/tiles, shared with bench/tiles.py): ``points_1m``, 1,000,000
points uniformly over lon -125..-66, lat 24..50 with a name, a rank and a value each
(tests/clients/generated.py), registered with ``manage.py koop_dataset ... --refresh``.

``encode``: in this process, the hot table loaded. For each zoom 6..14, VT_TILES tiles that hold
data (the tiles of points picked at random, seeded), each built from the table once after a
warm-up of another tile: the engine's query + ST_AsMVTGeom + ST_AsMVT, the LRU bypassed
(``build_tile``): median and p90 ms, features and bytes. ``cold`` is the first tile of a new
version in a fresh process state (the hot table attached again, then the tile built).

``http``: the site as ``make run`` serves it (scripts/serve) on 127.0.0.1, XYZ tiles asked one
after the other (c=1) until the last byte: distinct tiles (each built once: LRU misses) and the
same tiles again (LRU hits); tiles per second = tiles / wall time.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.tiles import AREA, WORK, env, manage  # noqa: E402
from tests.clients.generated import generate  # noqa: E402

NAME = "points_1m"
ZOOMS = range(6, 15)
PER_ZOOM = int(os.environ.get("VT_TILES", "20"))


def points():
    return generate("points", 1_000_000, seed=4, area=AREA, size=0.0)


def load() -> None:
    (WORK / "data").mkdir(parents=True, exist_ok=True)
    manage("migrate", "--noinput", "-v0")
    layer = points()
    layer.write(WORK / "data" / f"{NAME}.geojson")
    manage("koop_dataset", "geojson", NAME, "--option", f"source={NAME}.geojson",
           "--ttl", "8640000", "--max-record-count", "2000", "--refresh")
    print(json.dumps({"dataset": NAME, "features": len(layer)}))


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    x = (lon + 180) / 360 * 2 ** z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2 ** z
    return int(x), int(y)


def pick(seed: int = 11) -> dict[int, list[tuple[int, int]]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = points().bounds[:, :2]
    out: dict[int, list[tuple[int, int]]] = {}
    for z in ZOOMS:
        chosen: list[tuple[int, int]] = []
        for i in rng.permutation(len(centres))[:5000]:
            tile = tile_of(*centres[i], z)
            if tile not in chosen:
                chosen.append(tile)
            if len(chosen) == PER_ZOOM + 1:  # one more: the warm-up
                break
        out[z] = chosen
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def setup_django() -> None:
    os.environ.update(env())
    import django

    django.setup()


def encode() -> None:
    setup_django()
    import mapbox_vector_tile
    from django.test import RequestFactory

    from koop_app import data
    from koop_app.outputs import serving
    from koop_app.outputs.vectortiles.tiles import Tile, build_tile, open_tile_layers

    dataset = serving.find_dataset("geojson", None, NAME)
    request = RequestFactory().get("/")
    chosen = pick()
    # Cold: a fresh process state, the first tile of this version (hot table attached).
    data.reset_process_state()
    x, y = chosen[10][0]
    clock = time.perf_counter()
    layers = open_tile_layers(request, dataset, Tile(10, x, y))
    build_tile(dataset, layers, Tile(10, x, y))
    print(json.dumps({"cold_first_tile_ms": round((time.perf_counter() - clock) * 1000, 1)}))
    for z, tiles in chosen.items():
        warm, *measured = tiles
        build_tile(dataset, layers, Tile(z, *warm))
        times, features, sizes = [], [], []
        for x, y in measured:
            tile = Tile(z, x, y)
            clock = time.perf_counter()
            layers = open_tile_layers(request, dataset, tile)
            blob = build_tile(dataset, layers, tile)
            times.append((time.perf_counter() - clock) * 1000)
            decoded = mapbox_vector_tile.decode(blob)
            features.append(sum(len(x["features"]) for x in decoded.values()))
            sizes.append(len(blob))
        print(json.dumps({"z": z, "tiles": len(measured),
                          "ms_median": round(statistics.median(times), 2),
                          "ms_p90": round(pct(times, 0.9), 2),
                          "features_median": int(statistics.median(features)),
                          "bytes_median": int(statistics.median(sizes))}), flush=True)


def http() -> None:
    from koop_app.siteload import ServedSite, timed_get

    chosen = pick()
    with ServedSite(env()) as site:
        status, _, _ = timed_get(site.port, f"/geojson/{NAME}/VectorTileServer/tiles.json")
        assert status == 200, status
        for z, tiles in chosen.items():
            row: dict[str, object] = {"z": z, "tiles": len(tiles)}
            for label in ("built", "cached"):
                clock = time.perf_counter()
                for x, y in tiles:
                    status, body, _ = timed_get(
                        site.port, f"/geojson/{NAME}/VectorTileServer/{z}/{x}/{y}.pbf")
                    if status != 200:
                        raise RuntimeError(f"{status} {body[:200]!r}")
                wall = time.perf_counter() - clock
                row[f"{label}_tiles_per_s"] = round(len(tiles) / wall, 1)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    {"load": load, "encode": encode, "http": http}[sys.argv[1]]()
