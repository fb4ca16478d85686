"""Tile queries as the ArcGIS Maps SDK sends them: PBF vs JSON vs GeoJSON, and the SDK's draw.

    .venv/bin/python bench/tiles.py load                          # generate + register + refresh
    flock /work/wt/heavy.lock .venv/bin/python bench/tiles.py tiles   # bytes and ms per format
    flock /work/wt/heavy.lock .venv/bin/python bench/tiles.py draw    # the SDK draws 1M points
    .venv/bin/python bench/tiles.py summary results.jsonl         # tiles' lines as tables
    TILES_SAMPLES=5 TILES_PER_ZOOM=8 ...                            # the knobs (defaults below)

Data ($TILES_DIR, default /tmp/hot/tiles): ``points_1m`` (1,000,000 points) and
``polygons_100k`` (100,000 quadrilaterals ~0.1 degree across), spread uniformly over
lon -125..-66, lat 24..50 with a name, a rank and a value each (tests/clients/generated.py),
registered with ``manage.py koop_dataset ... --refresh``.

``tiles``: the site as ``make run`` serves it (scripts/serve) on 127.0.0.1; for zoom levels
4..12, TILES_PER_ZOOM tiles that hold data (the tiles of features picked at random, seeded),
each asked as the SDK asks a tile of a FeatureLayer in a Web Mercator view (resultType=tile,
the tile envelope in 102100, outSR=102100, quantizationParameters in view mode with the
tile's extent and its pixel as tolerance, maxAllowableOffset, maxRecordCountFactor=4,
returnExceededLimitFeatures=false, outFields=*, orderByFields) with f=pbf, f=json and
f=geojson (no quantizationParameters: GeoJSON has none), TILES_SAMPLES times each after one
warm-up; the time is the HTTP round trip on loopback until the last byte, sequential (c=1).

``draw``: the SDK page of the tests (tests/clients/browser.py) in Debian's chromium draws
``points_1m`` in a 1280 x 800 Web Mercator view at a few zoom levels, each in a fresh browser
context: the time from adding the layer to the view (ready, empty) until the LayerView stops
updating, the features it holds, the requests it made; then the same requests are sent again
one after the other from Python: the bytes of the answers and the server's time for them.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from koop_app.siteload import ServedSite, timed_get  # noqa: E402
from tests.clients.generated import generate  # noqa: E402

WORK = Path(os.environ.get("TILES_DIR", "/tmp/hot/tiles"))
AREA = (-125.0, 24.0, -66.0, 50.0)
DATASETS = {"points_1m": ("points", 1_000_000, 0.0), "polygons_100k": ("polygons", 100_000, 0.1)}
ZOOMS = range(4, 13)
PER_ZOOM = int(os.environ.get("TILES_PER_ZOOM", "8"))
SAMPLES = int(os.environ.get("TILES_SAMPLES", "5"))
HALF = math.pi * 6378137  # half the Web Mercator world, metres
TILE_PIXELS = 512  # the SDK's feature tiles


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "KOOP_", "REDIS_", "CELERY_", "DATABASE_"))}
    out.update({"DJANGO_SETTINGS_MODULE": "koopsite.settings", "KOOP_VAR_DIR": str(WORK / "var"),
                "KOOP_DATA_DIR": str(WORK / "data"), "DJANGO_DEBUG": "0",
                "KOOP_LOG_LEVEL": "WARNING", "CELERY_BROKER_URL": "memory://"})
    return out


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env(), check=True,
                   stdout=subprocess.DEVNULL)


def layers() -> dict:
    return {name: generate(kind, count, seed=4, area=AREA, size=size)
            for name, (kind, count, size) in DATASETS.items()}


def load() -> None:
    (WORK / "data").mkdir(parents=True, exist_ok=True)
    manage("migrate", "--noinput", "-v0")
    for name, layer in layers().items():
        clock = time.perf_counter()
        layer.write(WORK / "data" / f"{name}.geojson")
        written = time.perf_counter() - clock
        manage("koop_dataset", "geojson", name, "--option", f"source={name}.geojson",
               "--ttl", "8640000", "--max-record-count", "2000", "--refresh")
        print(json.dumps({"dataset": name, "features": len(layer),
                          "write_s": round(written, 1),
                          "refresh_s": round(time.perf_counter() - clock - written, 1)}))


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    x = (lon + 180) / 360 * 2 ** z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2 ** z
    return int(x), int(y)


def tile_params(z: int, x: int, y: int) -> dict[str, str]:
    """The query the SDK sends for the feature tile (z, x, y) of a Web Mercator view."""
    size = 2 * HALF / 2 ** z
    xmin, ymax = -HALF + x * size, HALF - y * size
    envelope = {"xmin": xmin, "ymin": ymax - size, "xmax": xmin + size, "ymax": ymax,
                "spatialReference": {"wkid": 102100}}
    pixel = size / TILE_PIXELS
    return {"f": "pbf", "geometry": json.dumps(envelope, separators=(",", ":")),
            "maxRecordCountFactor": "4", "resultType": "tile",
            "returnExceededLimitFeatures": "false", "orderByFields": "OBJECTID ASC",
            "outFields": "*", "outSR": "102100", "spatialRel": "esriSpatialRelIntersects",
            "where": "1=1", "geometryType": "esriGeometryEnvelope", "inSR": "102100",
            "maxAllowableOffset": repr(pixel),
            "quantizationParameters": json.dumps({
                "extent": envelope, "mode": "view", "originPosition": "upperLeft",
                "tolerance": pixel}, separators=(",", ":"))}


def pick_tiles(layer, seed: int = 7) -> dict[int, list[tuple[int, int]]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = layer.bounds[:, :2]
    out: dict[int, list[tuple[int, int]]] = {}
    for z in ZOOMS:
        tiles: list[tuple[int, int]] = []
        for i in rng.permutation(len(centres))[:500]:
            tile = tile_of(*centres[i], z)
            if tile not in tiles:
                tiles.append(tile)
            if len(tiles) == PER_ZOOM:
                break
        out[z] = tiles
    return out


def ask(port: int, path: str) -> tuple[bytes, float]:
    status, body, seconds = timed_get(port, path, timeout=300)
    if status != 200 or body[:9] == b'{"error":':
        raise RuntimeError(f"{status} {body[:300]!r} for {path[:200]}")
    return body, seconds


def features_in(body: bytes, fmt: str) -> tuple[int, bool]:
    if fmt == "pbf":
        return -1, False
    answer = json.loads(body)
    exceeded = bool(answer.get("exceededTransferLimit") or
                    answer.get("properties", {}).get("exceededTransferLimit"))
    return len(answer["features"]), exceeded


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def tiles() -> None:
    data = layers()
    with ServedSite(env()) as site:
        for name, layer in data.items():
            path = f"/geojson/rest/services/{name}/FeatureServer/0/query?"
            ask(site.port, path + "where=1%3D1&returnCountOnly=true&f=json")  # hot
            for z, chosen in pick_tiles(layer).items():
                row: dict[str, object] = {"dataset": name, "z": z, "tiles": len(chosen)}
                counts, exceeded = [], 0
                for fmt in ("pbf", "json", "geojson"):
                    sizes, times = [], []
                    for x, y in chosen:
                        params = tile_params(z, x, y)
                        params["f"] = fmt
                        if fmt == "geojson":
                            del params["quantizationParameters"]
                        url = path + urllib.parse.urlencode(params)
                        body, _ = ask(site.port, url)  # warm-up
                        if fmt == "json":
                            n, over = features_in(body, fmt)
                            counts.append(n)
                            exceeded += over
                        for _ in range(SAMPLES):
                            body, seconds = ask(site.port, url)
                            times.append(seconds * 1000)
                        sizes.append(len(body))
                    row[fmt] = {"bytes_median": int(statistics.median(sizes)),
                                "ms_median": round(statistics.median(times), 1),
                                "ms_p90": round(pct(times, 0.9), 1)}
                row["features_median"] = int(statistics.median(counts))
                row["exceeded_tiles"] = exceeded
                print(json.dumps(row), flush=True)


def draw() -> None:
    from tests.clients.browser import Chromium, PageServer, build_page

    zooms = [int(z) for z in os.environ.get("TILES_DRAW_ZOOMS", "5,7,9,11").split(",")]
    centre = ((AREA[0] + AREA[2]) / 2, (AREA[1] + AREA[3]) / 2)
    x = centre[0] * HALF / 180
    y = math.log(math.tan((90 + centre[1]) * math.pi / 360)) * 6378137
    with ServedSite(env()) as site, PageServer(build_page()) as pages:
        url = f"http://127.0.0.1:{site.port}/geojson/rest/services/points_1m/FeatureServer/0"
        ask(site.port, "/geojson/rest/services/points_1m/FeatureServer/0/query"
                       "?where=1%3D1&returnCountOnly=true&f=json")  # hot
        chromium = Chromium()
        try:
            for z in zooms:
                page = chromium.open(pages.url)
                try:
                    # 591657527.59 is the scale of zoom 0 at 96 dpi (256 px tiles).
                    drawn = page.call("drawLayer", {
                        "url": url, "wkid": 3857, "center": [x, y],
                        "scale": 591657527.591555 / 2 ** z, "width": 1280, "height": 800},
                        timeout=600)
                    if "error" in drawn:
                        raise RuntimeError(drawn)
                    queries = [r for r in page.requests_to(url + "/query")]
                    # The same requests again, one after the other, from Python: the bytes
                    # the SDK downloaded and the server's share of the time.
                    replayed = [ask(site.port, r.url.split(str(site.port), 1)[1])
                                for r in queries if r.method == "GET"]
                    print(json.dumps({
                        "z": z, "seconds": round(drawn["seconds"], 2),
                        "features_in_layer_view": drawn["view"]["featureCount"],
                        "ink_pixels": drawn["view"]["inkPixels"],
                        "queries": len(queries),
                        "formats": sorted({r.params.get("f", "") for r in queries}),
                        "tile_queries": sum(r.params.get("resultType") == "tile"
                                            for r in queries),
                        "answer_bytes": sum(len(body) for body, _ in replayed),
                        "server_s_replayed": round(sum(t for _, t in replayed), 2)}),
                          flush=True)
                finally:
                    page.close()
        finally:
            chromium.close()


def summary() -> None:
    """The JSON lines of ``tiles`` (a file, or stdin) as a Markdown table per dataset."""
    lines = Path(sys.argv[2]).read_text() if len(sys.argv) > 2 else sys.stdin.read()
    rows = [json.loads(line) for line in lines.splitlines() if line.startswith("{")]
    for name in dict.fromkeys(row["dataset"] for row in rows):
        print(f"\n{name}: median bytes, median / p90 ms per tile query\n")
        print("| z | features (median) | exceeded | PBF bytes | JSON bytes | GeoJSON bytes "
              "| PBF ms | JSON ms | GeoJSON ms |")
        print("|---|---|---|---|---|---|---|---|---|")
        for row in (r for r in rows if r["dataset"] == name):
            sizes = " | ".join(f"{row[f]['bytes_median']:,}" for f in ("pbf", "json", "geojson"))
            times = " | ".join(f"{row[f]['ms_median']} / {row[f]['ms_p90']}"
                               for f in ("pbf", "json", "geojson"))
            print(f"| {row['z']} | {row['features_median']:,} | {row['exceeded_tiles']}/"
                  f"{row['tiles']} | {sizes} | {times} |")


if __name__ == "__main__":
    {"load": load, "tiles": tiles, "draw": draw, "summary": summary}[sys.argv[1]]()
