"""The arcgis provider against our own server on loopback: proxied answers equal direct ones."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pytest

from koop_app.models import Provider
from tests.conftest import body_of
from tests.providers.arcgis.conftest import COUNT, SOURCE_PAGE, arcgis_dataset, proxy

STATISTICS = orjson.dumps([
    {"statisticType": "count", "onStatisticField": "fid", "outStatisticFieldName": "n"},
    {"statisticType": "avg", "onStatisticField": "score", "outStatisticFieldName": "mean"},
    {"statisticType": "max", "onStatisticField": "rank", "outStatisticFieldName": "top"},
]).decode()

BATTERY: list[tuple[str, int, dict[str, str]]] = [
    ("where", 0, {"where": "rank = 3", "outFields": "*"}),
    ("where-and-fields", 0, {"where": "kind = 'oak' AND score > 10", "outFields": "name,score"}),
    ("where-like", 0, {"where": "name LIKE 'park 1%'", "outFields": "*"}),
    ("envelope", 0, {"geometry": "-104.5,39.2,-103.5,39.8",
                     "geometryType": "esriGeometryEnvelope",
                     "spatialRel": "esriSpatialRelIntersects", "outFields": "*"}),
    ("envelope-3857", 0, {"geometry": orjson.dumps({
        "xmin": -11631000, "ymin": 4740000, "xmax": -11500000, "ymax": 4830000,
        "spatialReference": {"wkid": 102100}}).decode(),
        "geometryType": "esriGeometryEnvelope", "inSR": "102100", "outFields": "fid"}),
    ("object-ids", 0, {"objectIds": "5,17,200,9999", "outFields": "*"}),
    ("order-and-page", 0, {"where": "1=1", "orderByFields": "score DESC", "resultOffset": "10",
                           "resultRecordCount": "25", "outFields": "*"}),
    ("page-past-source-limit", 0, {"where": "rank > 2", "orderByFields": "name",
                                   "resultOffset": "5", "resultRecordCount": "90",
                                   "outFields": "name,rank"}),
    ("last-page", 0, {"where": "1=1", "resultOffset": str(COUNT - 7),
                      "resultRecordCount": "20", "outFields": "fid"}),
    ("count", 0, {"where": "rank < 5", "returnCountOnly": "true"}),
    ("extent", 0, {"where": "kind = 'elm'", "returnExtentOnly": "true",
                   "returnCountOnly": "true"}),
    ("extent-3857", 0, {"where": "rank = 4", "returnExtentOnly": "true", "outSR": "3857"}),
    ("ids", 0, {"where": "rank = 1", "returnIdsOnly": "true"}),
    ("ids-ordered", 0, {"where": "rank = 1", "returnIdsOnly": "true",
                        "orderByFields": "score DESC"}),
    ("statistics", 0, {"outStatistics": STATISTICS, "groupByFieldsForStatistics": "kind",
                       "orderByFields": "kind"}),
    ("distinct", 0, {"where": "1=1", "outFields": "kind", "returnDistinctValues": "true",
                     "returnGeometry": "false", "orderByFields": "kind"}),
    ("out-sr", 0, {"where": "rank = 2", "outSR": "3857", "outFields": "*"}),
    ("no-geometry", 0, {"where": "rank = 6", "returnGeometry": "false", "outFields": "*"}),
    ("nothing-matches", 0, {"where": "rank > 1000", "outFields": "*"}),
    ("unpaged-all", 0, {"where": "1=1", "outFields": "*"}),
    ("polygons", 1, {"where": "1=1", "outFields": "*"}),
    ("polygons-envelope", 1, {"geometry": "-101.9,40.1,-99.5,40.3",
                              "geometryType": "esriGeometryEnvelope", "outFields": "*"}),
    ("table", 2, {"where": "visits > 100", "outFields": "*", "orderByFields": "visits DESC"}),
]


def comparable(body: dict[str, Any]) -> dict[str, Any]:
    """What must be equal between the proxy and the source: fields, rows, counts, extents."""
    out = {key: body.get(key) for key in ("count", "objectIds", "exceededTransferLimit",
                                          "objectIdFieldName", "geometryType")}
    if "extent" in body:
        out["extent"] = {k: pytest.approx(v, rel=1e-9) if isinstance(v, float) else v
                         for k, v in body["extent"].items()}
    if "fields" in body:
        out["fields"] = [(f["name"], f["type"]) for f in body["fields"]]
    if "features" in body:
        out["features"] = [{"attributes": f.get("attributes"),
                            "geometry": _approx(f.get("geometry"))} for f in body["features"]]
    return out


def _approx(value: Any) -> Any:
    if isinstance(value, float):
        return pytest.approx(value, rel=1e-9, abs=1e-9)
    if isinstance(value, list):
        return [_approx(v) for v in value]
    if isinstance(value, dict):
        return {k: _approx(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize(("layer", "params"), [(layer, params) for _, layer, params in BATTERY],
                         ids=[name for name, _, _ in BATTERY])
def test_proxied_answers_equal_the_sources(upstream, client, layer, params):
    arcgis_dataset(max_record_count=2000)
    wanted = upstream.direct(client, f"/{layer}/query", {**params, "f": "json"})
    assert "error" not in wanted, wanted
    got = proxy(client, f"/{layer}/query", {**params, "f": "json"})
    assert "error" not in got, got
    assert comparable(got) == comparable(wanted)


@pytest.mark.parametrize("paging", ["offset", "objectids"])
def test_answers_over_the_source_limit_are_complete(upstream, client, sent, paging):
    arcgis_dataset(max_record_count=2000, options={"paging": paging})
    got = proxy(client, "/0/query", {"where": "1=1", "outFields": "*", "f": "json"})
    assert len(got["features"]) == COUNT > SOURCE_PAGE
    assert sorted(f["attributes"]["fid"] for f in got["features"]) == list(range(1, COUNT + 1))
    assert not got.get("exceededTransferLimit")
    queries = [call["form"] for call in sent if call["url"].endswith("/0/query")]
    if paging == "offset":
        offsets = [int(form["resultOffset"]) for form in queries]
        assert offsets == list(range(0, COUNT + 1, SOURCE_PAGE))
        assert all(int(form["resultRecordCount"]) <= SOURCE_PAGE for form in queries)
    else:
        assert queries[0]["returnIdsOnly"] == "true"
        chunks = [form["objectIds"].split(",") for form in queries[1:]]
        assert all(len(chunk) <= SOURCE_PAGE for chunk in chunks)
        assert sum(len(chunk) for chunk in chunks) == COUNT
        assert all("resultOffset" not in form for form in queries)


@pytest.mark.parametrize("paging", ["offset", "objectids"])
def test_our_limit_caps_an_unpaged_answer(upstream, client, paging):
    arcgis_dataset(max_record_count=100, options={"paging": paging})
    got = proxy(client, "/0/query", {"where": "1=1", "outFields": "fid", "f": "json"})
    assert [f["attributes"]["fid"] for f in got["features"]] == list(range(1, 101))
    assert got["exceededTransferLimit"] is True
    page = proxy(client, "/0/query", {"where": "1=1", "outFields": "fid", "f": "json",
                                      "resultOffset": "200", "resultRecordCount": "100"})
    assert [f["attributes"]["fid"] for f in page["features"]] == list(range(201, COUNT + 1))
    assert not page.get("exceededTransferLimit")


def test_paging_by_object_ids_keeps_the_order(upstream, client):
    arcgis_dataset(max_record_count=2000, options={"paging": "objectids"})
    params = {"where": "rank > 2", "orderByFields": "score DESC,fid", "resultOffset": "30",
              "resultRecordCount": "60", "outFields": "fid,score", "f": "json"}
    wanted = upstream.direct(client, "/0/query", params)
    assert comparable(proxy(client, "/0/query", params)) == comparable(wanted)


def test_filters_are_done_at_the_source(upstream, client, sent):
    arcgis_dataset()
    proxy(client, "/0/query", {"where": "rank = 3", "geometry": "-105,39,-104,40",
                               "objectIds": "3,20,37", "outFields": "name", "outSR": "3857",
                               "f": "json"})
    (form,) = [call["form"] for call in sent if call["url"].endswith("/0/query")]
    assert form["where"] == "rank = 3"
    assert form["geometry"] == "-105,39,-104,40" and form["inSR"] == "4326"
    assert form["objectIds"] == "3,20,37"
    assert form["outFields"] == "fid,name"
    assert form["outSR"] == "4326"  # features come in WGS 84; our engine projects them
    assert form["resultOffset"] == "0"


@pytest.mark.parametrize("layer", [0, 1])
def test_geojson_and_pbf_outputs_match(upstream, client, layer):
    arcgis_dataset(max_record_count=2000)
    params = {"where": "1=1", "outFields": "*", "orderByFields": "fid"}
    wanted = upstream.direct(client, f"/{layer}/query", {**params, "f": "geojson"})
    got = proxy(client, f"/{layer}/query", {**params, "f": "geojson"})
    assert [f["properties"] for f in got["features"]] == \
        [f["properties"] for f in wanted["features"]]
    assert [_approx(f["geometry"]) for f in got["features"]] == \
        [f["geometry"] for f in wanted["features"]]
    direct = client.get(f"/geojson/rest/services/parks_ref/FeatureServer/{layer}/query",
                        {**params, "f": "pbf"})
    assert proxy(client, f"/{layer}/query", {**params, "f": "pbf"}) == body_of(direct)


def test_service_and_layers_describe_the_source(upstream, client):
    arcgis_dataset()
    service = proxy(client, "", {"f": "json"})
    assert [(entry["id"], entry["name"]) for entry in service["layers"]] == \
        [(0, "Parks"), (1, "Zones")]
    assert [(entry["id"], entry["name"]) for entry in service["tables"]] == [(2, "Visits")]
    for layer in (0, 1, 2):
        wanted = upstream.direct(client, f"/{layer}", {"f": "json"}, service="parks")
        got = proxy(client, f"/{layer}", {"f": "json"})
        for key in ("id", "name", "type", "objectIdField", "displayField", "geometryType"):
            assert got.get(key) == wanted.get(key), key
        assert [(f["name"], f["type"]) for f in got["fields"]] == \
            [(f["name"], f["type"]) for f in wanted["fields"]]
        if "extent" in wanted:
            assert _approx(got["extent"]) == wanted["extent"]
    layers = proxy(client, "/layers", {"f": "json"})
    assert [entry["id"] for entry in layers["layers"]] == [0, 1]
    assert [entry["id"] for entry in layers["tables"]] == [2]


def test_layer_info_is_reused_for_a_while(upstream, client, sent):
    arcgis_dataset(options={"metadata_seconds": 60})
    for _ in range(3):
        proxy(client, "/0/query", {"where": "rank = 3", "f": "json"})
    assert sum(call["url"].endswith("/layers") for call in sent) == 1


def test_one_feature_by_its_id(upstream, client):
    arcgis_dataset()
    got = proxy(client, "/0/17", {"f": "json"})
    assert got["feature"]["attributes"]["name"] == "park 017"
    assert got["feature"]["geometry"] == _approx({"x": -103.3, "y": 39.0})


def test_service_path_with_folders(upstream, client, sent):
    """``Hosted::Parks`` in the route, or the service option, is the path Hosted/Parks."""
    from django.conf import settings

    from tests.providers.arcgis.conftest import connect

    # The live server's services are not in folders: a folder here is the provider's folder
    # of the GeoServices URL (<root>/geojson/rest/services -> <root> + geojson/parks_ref).
    connect(settings, root={"url": f"{upstream.url}/rest/services"})
    arcgis_dataset("geojson::parks_ref", host="root")
    arcgis_dataset("aliased", host="root", options={"service": "geojson/parks_ref"})
    for name in ("geojson::parks_ref", "aliased"):
        got = proxy(client, "/0/query", {"where": "fid = 7", "outFields": "name", "f": "json"},
                    service=name, host="root")
        assert [f["attributes"]["name"] for f in got["features"]] == ["park 007"]
    assert all("/rest/services/geojson/parks_ref/FeatureServer/" in call["url"]
               for call in sent)


@pytest.mark.parametrize("chosen_by", ["dataset option", "provider row"])
def test_cached_mode_reads_everything_once(upstream, client, sent, chosen_by):
    Provider.sync_from_registry()
    if chosen_by == "provider row":  # every arcgis dataset of the site
        Provider.objects.filter(name="arcgis").update(cache_policy=Provider.CACHED)
        arcgis_dataset(max_record_count=2000)
    else:  # this dataset only, on a slow server
        dataset = arcgis_dataset(max_record_count=2000, options={"cached": True})
        assert dataset.is_cached and dataset.provider.cache_policy == Provider.PASS_THROUGH
    first = proxy(client, "/0/query", {"where": "rank = 3", "outFields": "*", "f": "json"})
    asked = len(sent)
    assert asked > COUNT // SOURCE_PAGE  # every layer, page by page
    again = proxy(client, "/0/query", {"where": "rank = 3", "outFields": "*", "f": "json"})
    stats = proxy(client, "/0/query", {"outStatistics": STATISTICS,
                                       "groupByFieldsForStatistics": "kind", "f": "json"})
    table = proxy(client, "/2/query", {"where": "1=1", "returnCountOnly": "true", "f": "json"})
    assert len(sent) == asked  # answered from our cache
    assert comparable(again) == comparable(first)
    wanted = upstream.direct(client, "/0/query", {"where": "rank = 3", "outFields": "*",
                                                  "f": "json"})
    assert comparable(first) == comparable(wanted)
    assert sum(row["attributes"]["n"] for row in stats["features"]) == COUNT
    assert table["count"] == 30


def test_a_dataset_cached_by_its_option_is_scheduled_and_refreshed_with_all(upstream):
    from django.core.management import call_command

    from koop_app.schedules import sync_schedule

    cached = arcgis_dataset("cached", options={"cached": True, "service": "parks"})
    passing = arcgis_dataset("passing", options={"service": "parks"})
    assert sync_schedule(cached) is not None  # beat refreshes it on its TTL
    assert sync_schedule(passing) is None
    out = io.StringIO()
    call_command("koop_refresh", "--all", "--no-progress", stdout=out)
    assert "arcgis/local/cached" in out.getvalue()
    assert "arcgis/local/passing" not in out.getvalue()
