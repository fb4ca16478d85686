"""Elasticsearch pass-through vs the same documents cached, query by query.

    flock /work/wt/heavy.lock .venv/bin/python bench/elasticsearch_passthrough.py [documents]

No Elasticsearch node can be installed here: the pass-through side asks the local fake cluster
of the tests (tests/providers/elasticsearch/fake_es.py, numpy over in-memory columns, one
thread per request). Its speed is NOT a real node's: it measures the provider's own cost
(mapping, DSL, one HTTP round trip, JSON of the hits, normalising the page) plus a search
engine that scans instead of using an index. The cached side is the geojson provider's copy of
the same documents (hot DuckDB table). Each query runs once to warm up, then REPEAT times;
the median wall time of the Django test client's request is shown (tests' settings, SQLite).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
REPEAT = 5


def main() -> None:
    import django

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    work = Path(tempfile.mkdtemp(prefix="es-bench-"))
    os.environ["KOOP_DATA_DIR"] = str(work)
    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    connection.creation.create_test_db(verbosity=0)
    from django.test import Client

    from koop_app.models import Dataset, Provider
    from tests.providers.elasticsearch.conftest import (
        API_KEY,
        PLACES_MAPPING,
        as_geojson,
        places,
    )
    from tests.providers.elasticsearch.fake_es import FakeElasticsearch

    clock = time.perf_counter()
    documents = places(count)
    server = FakeElasticsearch(api_key=API_KEY).start()
    server.add_index("places", PLACES_MAPPING, [(f"p{d['oid']}", d) for d in documents])
    data_dir = Path(settings.KOOP["DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "places.geojson").write_bytes(orjson.dumps(as_geojson(documents, "location")))
    print(f"{count} documents generated and loaded in {time.perf_counter() - clock:.1f} s",
          flush=True)
    settings.KOOP = {**settings.KOOP, "ALLOWED_SOURCE_NETWORKS": ["127.0.0.1/32"],
                     "CONNECTIONS": {"elasticsearch": {"bench": {"url": server.url,
                                                                 "api_key": API_KEY}}}}
    rows = {p.name: p for p in Provider.sync_from_registry()}
    Dataset.objects.create(provider=rows["elasticsearch"], host="bench", dataset_id="places",
                           options={"id_field": "oid"})
    Dataset.objects.create(provider=rows["geojson"], dataset_id="places",
                           options={"source": "places.geojson"}, id_field="oid")
    client = Client()
    stats = orjson.dumps([
        {"statisticType": "count", "onStatisticField": "oid", "outStatisticFieldName": "n"},
        {"statisticType": "avg", "onStatisticField": "pop", "outStatisticFieldName": "mean"},
    ]).decode()
    queries = {
        "layer info": ("", {}),
        "where+envelope page (100)": ("/query", {"where": "pop > 50000 AND kind = 'city'",
                                                "geometry": "-60,-30,60,50",
                                                "resultRecordCount": "100", "outFields": "*"}),
        "count (where)": ("/query", {"where": "pop > 50000", "returnCountOnly": "true"}),
        "statistics by kind": ("/query", {"outStatistics": stats,
                                          "groupByFieldsForStatistics": "kind"}),
        "2000-feature page": ("/query", {"where": "1=1", "outFields": "*",
                                         "resultRecordCount": "2000"}),
    }
    bases = {"pass-through": "/elasticsearch/rest/services/bench/places/FeatureServer/0",
             "cached": "/geojson/rest/services/places/FeatureServer/0"}
    clock = time.perf_counter()
    client.get(bases["cached"], {"f": "json"})  # the first load of the cached copy
    print(f"cached copy loaded in {time.perf_counter() - clock:.1f} s", flush=True)
    print(f"\n| query ({count:,} documents) | pass-through ms (fake cluster) | cached ms | "
          "answers equal |")
    print("|---|---|---|---|")
    for name, (suffix, params) in queries.items():
        timings, bodies = {}, {}
        for side, base in bases.items():
            url = base + suffix
            bodies[side] = client.get(url, {"f": "json", **params}).content  # warm up
            samples = []
            for _ in range(REPEAT):
                start = time.perf_counter()
                response = client.get(url, {"f": "json", **params})
                samples.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200 and b'"error"' not in response.content[:20]
            timings[side] = statistics.median(samples)
        equal = _summary(bodies["pass-through"]) == _summary(bodies["cached"])
        print(f"| {name} | {timings['pass-through']:.1f} | {timings['cached']:.1f} | "
              f"{'yes' if equal else 'no'} |", flush=True)
    server.stop()


def _summary(raw: bytes) -> object:
    """What must agree: counts, feature ids and statistics rows (not field metadata)."""
    body = orjson.loads(raw)
    if "features" in body:
        rows = [f["attributes"] for f in body["features"]]
        if rows and "oid" in rows[0]:
            return sorted(r["oid"] for r in rows)
        return sorted(orjson.dumps({k: round(v, 6) if isinstance(v, float) else v
                                    for k, v in r.items()}, option=orjson.OPT_SORT_KEYS)
                      for r in rows)
    if "count" in body:
        return body["count"]
    return sorted(f["name"] for f in body.get("fields", []))


if __name__ == "__main__":
    main()
