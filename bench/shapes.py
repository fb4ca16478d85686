"""The request shapes ArcGIS clients send, against our server and Koop, side by side.

    python3 bench/shapes.py gen points_10k polygons_100k      # data under $SHAPES_DIR/koop-ref/data
    python3 bench/shapes.py list points_1m                     # the URLs of each shape
    python3 bench/shapes.py run --base http://127.0.0.1:8450/geojson/rest --service points_1m \\
        --label ours --json /tmp/shapes/results/ours_points_1m.json [--pid N] [--only a,b]
    .venv/bin/python bench/shapes.py inprocess points_10k      # server time, WSGI handler, no HTTP
    python3 bench/shapes.py summary /tmp/shapes/results points_10k points_1m ...

`bench/shapes.sh` runs it all (both servers, every dataset). The reference generator
(`gen_data.py` of ../shared/koop-reference, copied to $SHAPES_DIR/koop-ref) writes the data: this
script only adds dataset names to it (points_10k, polygons_100k, polygons_1m, lines_100k, ...),
same features, same seed rules. Dataset names are <points|polygons|lines>_<count>.

Load: `wrk` (closed loop, c=1 and c=8) through the reference `bench.py`'s `run_wrk`. A shape
that a server answers slower than DURATION/3 is timed with sequential requests instead (wrk would
see no answer within the window): its throughput is then 1 / mean latency at both c.

objectIds: 500 features picked at seeded random positions; each server is first asked for its
own ids (`returnIdsOnly`), since Koop numbers features with a hash and we use the `id` field,
so both servers get the same 500 features (in the sampled order), as a form POST like ArcGIS
clients send a list that long (as a GET, 500 seven-digit ids pass gunicorn's 4 KB URL limit).
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import math
import os
import random
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("SHAPES_DIR", "/tmp/shapes"))
REF = WORK / "koop-ref"
KINDS = {"points": "Point", "polygons": "Polygon", "lines": "LineString"}

STATS = json.dumps([
    {"statisticType": "count", "onStatisticField": "id", "outStatisticFieldName": "n"},
    {"statisticType": "avg", "onStatisticField": "value", "outStatisticFieldName": "avg_value"},
    {"statisticType": "max", "onStatisticField": "count", "outStatisticFieldName": "max_count"},
], separators=(",", ":"))
# A concave pentagon over the middle of the data (lon -125..-66, lat 24..50), in WGS 84.
POLYGON = json.dumps({"rings": [[[-104, 34], [-104, 41], [-97, 43], [-99, 38], [-92, 34],
                                 [-104, 34]]], "spatialReference": {"wkid": 4326}},
                     separators=(",", ":"))
# The Web Mercator tile z=7, x=28, y=48 (lon -101.25..-98.44, lat 36.6..38.8), as the ArcGIS
# Maps SDK asks for it: an envelope in 102100, resultType=tile, quantization, offset = 1 pixel.
TILE_RES = 2 * math.pi * 6378137 / 256 / 2 ** 7
TILE_X, TILE_Y, TILE_Z = 28, 48, 7


def _tile_envelope() -> str:
    size = 2 * math.pi * 6378137 / 2 ** TILE_Z
    origin = math.pi * 6378137
    xmin, ymax = -origin + TILE_X * size, origin - TILE_Y * size
    return json.dumps({"xmin": xmin, "ymin": ymax - size, "xmax": xmin + size, "ymax": ymax,
                       "spatialReference": {"wkid": 102100}}, separators=(",", ":"))


def shapes(kind: str) -> list[tuple[str, str, dict[str, str]]]:
    """(id, "layer"|"query", params) of each shape for a dataset of ``kind``."""
    tile_quantization = json.dumps({
        "mode": "view", "originPosition": "upperLeft", "tolerance": TILE_RES,
        "extent": json.loads(_tile_envelope())}, separators=(",", ":"))
    out = [
        ("layer_info", "layer", {"f": "json"}),
        ("count_10k_floor", "query", {"where": "1=1", "returnCountOnly": "true", "f": "json"}),
        ("object_ids_500", "query", {"objectIds": "{ids}", "outFields": "*", "f": "json"}),
        ("stats_where", "query", {"where": "category IN ('Park','School') AND value > 100",
                                  "outStatistics": STATS, "f": "json"}),
        ("extent_count", "query", {"where": "value > 500", "returnExtentOnly": "true",
                                   "returnCountOnly": "true", "f": "json"}),
        ("like_in_page", "query", {"where": "name LIKE 'North%' AND category IN "
                                            "('Park','School','Store')",
                                   "outFields": "*", "resultRecordCount": "200", "f": "json"}),
        ("distinct", "query", {"where": "1=1", "outFields": "category",
                               "returnDistinctValues": "true", "returnGeometry": "false",
                               "orderByFields": "category", "f": "json"}),
        ("outsr_page", "query", {"where": "value > 100", "outFields": "*", "outSR": "3857",
                                 "resultRecordCount": "1000", "f": "json"}),
        ("polygon_intersects", "query", {
            "geometry": POLYGON, "geometryType": "esriGeometryPolygon", "inSR": "4326",
            "spatialRel": "esriSpatialRelIntersects", "outFields": "id,name,category",
            "resultRecordCount": "1000", "f": "json"}),
        ("geojson_page", "query", {"where": "1=1", "outFields": "*", "resultRecordCount": "1000",
                                   "f": "geojson"}),
        ("esri_page", "query", {"where": "1=1", "outFields": "*", "resultRecordCount": "1000",
                                "f": "json"}),
        ("tile_3857", "query", {
            "f": "json", "geometry": _tile_envelope(), "geometryType": "esriGeometryEnvelope",
            "inSR": "102100", "outSR": "102100", "spatialRel": "esriSpatialRelIntersects",
            "where": "1=1", "outFields": "id,category", "returnGeometry": "true",
            "resultType": "tile", "maxAllowableOffset": f"{TILE_RES:.6f}",
            "quantizationParameters": tile_quantization, "returnExceededLimitFeatures": "false",
            "orderByFields": "id"}),
    ]
    return out


def parse_name(name: str) -> tuple[str, int]:
    kind, _, size = name.partition("_")
    if kind not in KINDS or not size:
        raise SystemExit(f"dataset names are <{'|'.join(KINDS)}>_<count>, not {name!r}")
    count = int(size.lower().replace("k", "000").replace("m", "000000"))
    return KINDS[kind], count


def reference(module: str):
    spec = importlib.util.spec_from_file_location(module, REF / f"{module}.py")
    assert spec and spec.loader, f"{REF}/{module}.py missing: run bench/shapes.sh first"
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def generate(names: list[str]) -> None:
    gen_data = reference("gen_data")
    for name in names:
        kind, count = parse_name(name)
        if (REF / "data" / f"{name}.geojson").exists():
            continue
        gen_data.DATASETS.setdefault(name, (kind, count))
        gen_data.generate(name, str(REF / "data"))


def url(base: str, service: str, where: str, params: dict[str, str]) -> str:
    path = f"{base.rstrip('/')}/services/{service}/FeatureServer/0"
    if where == "query":
        path += "/query"
    return path + "?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote, safe="")


def get(address: str, timeout: float = 600.0, form: str | None = None) -> tuple[float, bytes]:
    """One request: GET, or a form POST when ``form`` is given."""
    parts = urllib.parse.urlsplit(address)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    started = time.perf_counter()
    if form is None:
        conn.request("GET", parts.path + "?" + parts.query)
    else:
        conn.request("POST", parts.path, body=form.encode(),
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    body = conn.getresponse().read()
    conn.close()
    return time.perf_counter() - started, body


def wrk_post(bench, address: str, form: str, concurrency: int, duration: float) -> dict:
    """wrk with a form POST (a Lua script sets method, body and type); bench.py's parsing."""
    import subprocess
    import tempfile

    script = ('wrk.method = "POST"\n'
              'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
              f"wrk.body = {json.dumps(form)}\n")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    real_run = subprocess.run

    def with_script(cmd, **kwargs):
        return real_run([*cmd[:-1], "-s", handle.name, cmd[-1]], **kwargs)

    subprocess.run = with_script  # bench.run_wrk builds the command; add the script to it
    try:
        return bench.run_wrk(address, concurrency, duration, 300)
    finally:
        subprocess.run = real_run
        os.unlink(handle.name)


def object_ids(base: str, service: str, count: int) -> str:
    _, body = get(url(base, service, "query",
                      {"where": "1=1", "returnIdsOnly": "true", "f": "json"}))
    ids = json.loads(body)["objectIds"]
    positions = random.Random(f"shapes:{count}").sample(range(len(ids)), min(500, len(ids)))
    return ",".join(str(ids[p]) for p in positions)


def summary_of(body: bytes) -> str:
    """What an answer holds, to compare both servers' answers at a glance."""
    try:
        doc = json.loads(body)
    except ValueError:
        return f"not JSON ({len(body)} bytes)"
    if "error" in doc:
        return f"ERROR {doc['error']}"
    for key in ("features", "objectIds"):
        if key in doc:
            return f"{len(doc[key])} {key}"
    return ",".join(sorted(doc))[:60]


def run(args: argparse.Namespace) -> None:
    bench = reference("bench")
    kind, count = parse_name(args.service)
    only = set(args.only.split(",")) if args.only else None
    ids = object_ids(args.base, args.service, count)
    results = []
    for shape, where, params in shapes(kind):
        if only and shape not in only:
            continue
        if shape == "count_10k_floor" and count != 10_000:
            continue
        form = None
        if "objectIds" in params:
            # As ArcGIS clients send a long id list: a form POST (the URL would pass 2,000).
            form = urllib.parse.urlencode({k: v.replace("{ids}", ids) for k, v in params.items()})
            params = {}
        address = url(args.base, args.service, where, params)
        warm, body = get(address, form=form)
        if warm > args.duration / 3:
            warm, body = get(address, form=form)  # the first may have paid for a JIT or a load
        slow = warm > args.duration / 3
        sequential = None
        for c in [int(c) for c in args.concurrency.split(",")]:
            sampler = bench.ProcSampler(args.pid) if args.pid else None
            if sampler:
                sampler.start()
            if slow:
                # Seconds per answer: a few sequential requests, once for every c (a server
                # this slow on one request gains nothing from more at once on 2 cores).
                if sequential is None:
                    times = [warm] + [get(address, form=form)[0] for _ in range(2)]
                    sequential = {"requests": len(times),
                                  "rps": round(1 / statistics.mean(times), 3),
                                  "p50_ms": round(statistics.median(times) * 1000, 1),
                                  "max_ms": round(max(times) * 1000, 1), "errors": 0,
                                  "sequential": True}
                row = dict(sequential)
            elif form is not None:
                row = wrk_post(bench, address, form, c, args.duration)
            else:
                row = bench.run_wrk(address, c, args.duration, 300)
            if sampler:
                row.update(sampler.finish())
            row.update({"query": shape, "concurrency": c, "answer": summary_of(body),
                        "bytes": len(body), "url": address[:300]})
            results.append(row)
            print(f"{args.label:<5} {args.service:<14} {shape:<19} c={c} "
                  f"{row.get('rps') or 0:9.2f} req/s  p50 {row.get('p50_ms') or 0:8.1f} ms"
                  f"{' (sequential)' if slow else ''}  {row['answer']}", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"meta": {"service": args.service,
                                                        "label": args.label,
                                                        "duration_s": args.duration},
                                               "results": results}, indent=1))


def inprocess(args: argparse.Namespace) -> None:
    """Server time per shape: Django's WSGI handler called directly, no HTTP, no client."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "koopsite.settings")
    os.environ.setdefault("KOOP_VAR_DIR", str(WORK / "var"))
    os.environ.setdefault("DJANGO_DEBUG", "0")
    sys.path.insert(0, str(ROOT))
    import io

    from django.core.wsgi import get_wsgi_application

    app = get_wsgi_application()

    def call(path_qs: str, form: str | None = None) -> bytes:
        path, _, qs = path_qs.partition("?")
        body = (form or "").encode()
        environ = {"REQUEST_METHOD": "POST" if form else "GET", "PATH_INFO": path,
                   "QUERY_STRING": qs, "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
                   "HTTP_HOST": "127.0.0.1", "REMOTE_ADDR": "127.0.0.1",
                   "CONTENT_TYPE": "application/x-www-form-urlencoded",
                   "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
                   "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr}
        chunks = app(environ, lambda status, headers: None)
        return b"".join(chunks)

    base = "/geojson/rest"
    for service in args.services:
        kind, count = parse_name(service)
        body = call(url(base, service, "query", {"where": "1=1", "returnIdsOnly": "true",
                                                 "f": "json"}))
        all_ids = json.loads(body)["objectIds"]
        positions = random.Random(f"shapes:{count}").sample(range(len(all_ids)),
                                                            min(500, len(all_ids)))
        ids = ",".join(str(all_ids[p]) for p in positions)
        only = set(args.only.split(",")) if args.only else None
        for shape, where, params in shapes(kind):
            if only and shape not in only:
                continue
            params = {k: v.replace("{ids}", ids) for k, v in params.items()}
            form = None
            if "objectIds" in params:
                form, params = urllib.parse.urlencode(params), {}
            address = url(base, service, where, params)
            body = call(address, form)
            times = []
            deadline = time.perf_counter() + args.seconds
            while time.perf_counter() < deadline or len(times) < 3:
                started = time.perf_counter()
                call(address, form)
                times.append(time.perf_counter() - started)
            print(f"{service:<14} {shape:<19} median {statistics.median(times) * 1000:8.2f} ms"
                  f"  min {min(times) * 1000:8.2f} ms  n={len(times):<5} {summary_of(body)}",
                  flush=True)


def summary(folder: str, services: list[str]) -> None:
    """Markdown: per dataset and shape, ours vs Koop, and the geometric means of the ratios."""
    ratios: dict[int, list[float]] = {}
    for service in services:
        ours = _load(Path(folder) / f"ours_{service}.json")
        koop = _load(Path(folder) / f"koop_{service}.json")
        print(f"\n#### {service}\n")
        print("| shape | c | ours p50 ms | Koop p50 ms | ours req/s | Koop req/s | ratio | "
              "answer |")
        print("|---|---|---|---|---|---|---|---|")
        for key, mine in ours.items():
            theirs = koop.get(key, {})
            ratio = mine["rps"] / theirs["rps"] if mine.get("rps") and theirs.get("rps") else None
            failed = ("ERROR", "not JSON")
            if str(mine.get("answer")).startswith(failed) or str(theirs.get("answer")).startswith(
                    failed):
                ratio = None  # an error or a refusal is no answer to compare
            if ratio and key[0] not in ("layer_info", "count_10k_floor"):
                ratios.setdefault(key[1], []).append(ratio)
            mark = "*" if theirs.get("sequential") else ""
            print(f"| {key[0]} | {key[1]} | {mine.get('p50_ms')} | {theirs.get('p50_ms', '-')}"
                  f"{mark} | {mine.get('rps') or 0:.1f} | {theirs.get('rps') or 0:.2f}{mark} | "
                  f"{f'{ratio:.1f}x' if ratio else '-'} | {_short(mine.get('answer'))} / "
                  f"{_short(theirs.get('answer', '-'))} |")
    for c, values in sorted(ratios.items()):
        mean = math.exp(sum(math.log(v) for v in values) / len(values))
        print(f"\nc={c}: geometric mean of the throughput ratios over {len(values)} "
              f"shape x dataset cells: {mean:.1f}x (lowest {min(values):.1f}x)")


def _short(answer: str | None) -> str:
    return "layer" if answer and answer.startswith("advancedQuery") else str(answer)


def _load(path: Path) -> dict[tuple[str, int], dict]:
    if not path.exists():
        return {}
    return {(r["query"], r["concurrency"]): r for r in json.loads(path.read_text())["results"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("gen").add_argument("names", nargs="+")
    listing = sub.add_parser("list")
    listing.add_argument("service")
    listing.add_argument("--base", default="http://127.0.0.1:8450/geojson/rest")
    running = sub.add_parser("run")
    running.add_argument("--base", required=True)
    running.add_argument("--service", required=True)
    running.add_argument("--label", default="ours")
    running.add_argument("--json")
    running.add_argument("--pid", type=int)
    running.add_argument("--only")
    running.add_argument("--duration", type=float, default=4.0)
    running.add_argument("--concurrency", default="1,8")
    local = sub.add_parser("inprocess")
    local.add_argument("services", nargs="+")
    local.add_argument("--only")
    local.add_argument("--seconds", type=float, default=1.0)
    summing = sub.add_parser("summary")
    summing.add_argument("folder")
    summing.add_argument("services", nargs="+")
    args = parser.parse_args()
    if args.command == "gen":
        generate(args.names)
    elif args.command == "list":
        kind, _ = parse_name(args.service)
        for shape, where, params in shapes(kind):
            print(shape, url(args.base, args.service, where, params))
    elif args.command == "run":
        for host in (urllib.parse.urlsplit(args.base).hostname,):
            if host not in ("127.0.0.1", "localhost", "::1"):
                raise SystemExit("loopback only")
        run(args)
    elif args.command == "inprocess":
        inprocess(args)
    else:
        summary(args.folder, args.services)


if __name__ == "__main__":
    main()
