"""Pass-through providers: filtersApplied skips exactly those steps; precomputed answers win."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from koop_app.models import Provider
from tests.conftest import collection, feature, point

URL = "/geojson/rest/services/source/FeatureServer/0/query"


def rows(*sizes: int) -> list[dict[str, Any]]:
    return [feature({"size": s}, point(s, s)) for s in sizes]


@pytest.fixture
def pass_through(make_dataset):
    def make(document: dict) -> None:
        make_dataset("geojson", "source", document)
        Provider.objects.filter(name="geojson").update(cache_policy=Provider.PASS_THROUGH)

    return make


def get(client, **params: Any) -> dict:
    return orjson.loads(client.get(URL, params).content)


def sizes(body: dict) -> list[int]:
    return [f["attributes"]["size"] for f in body["features"]]


@pytest.mark.django_db
def test_without_filters_applied_the_engine_filters(client, pass_through):
    pass_through(collection(rows(1, 2, 3, 4)))
    assert sizes(get(client, where="size > 2")) == [3, 4]


@pytest.mark.django_db
def test_where_applied_is_not_redone(client, pass_through):
    # The source answered "size > 2" its own way (here: sent 1 and 4); the engine trusts it.
    pass_through(collection(rows(1, 4), filtersApplied={"where": True}))
    assert sizes(get(client, where="size > 2")) == [1, 4]
    # ...but still applies the steps not listed.
    assert sizes(get(client, where="size > 2", geometry="3,3,5,5")) == [4]


@pytest.mark.django_db
def test_geometry_and_paging_applied(client, pass_through):
    pass_through(collection(rows(1, 2, 3), filtersApplied={"geometry": True, "offset": True,
                                                           "limit": True},
                            metadata={"limitExceeded": True}))
    body = get(client, geometry="100,100,101,101", resultOffset="10", resultRecordCount="1")
    assert sizes(body) == [1, 2, 3]
    assert body["exceededTransferLimit"] is True


@pytest.mark.django_db
def test_all_applied(client, pass_through):
    pass_through(collection(rows(7), filtersApplied={"all": True}))
    assert sizes(get(client, where="size = 1", objectIds="5", resultOffset="3")) == [7]


@pytest.mark.django_db
def test_projection_applied_keeps_coordinates(client, pass_through):
    # The source answered in outSR: its coordinates stay, and the answer says they are in it.
    pass_through(collection(rows(5), filtersApplied={"projection": True}))
    body = get(client, outSR="3857")
    assert body["features"][0]["geometry"] == {"x": 5.0, "y": 5.0}
    assert body["spatialReference"]["wkid"] == 3857
    body = get(client, outSR="3857", returnExtentOnly="true")
    assert (body["extent"]["xmin"], body["extent"]["xmax"]) == (5, 5)
    assert body["extent"]["spatialReference"]["wkid"] == 3857
    geojson = orjson.loads(client.get(URL, {"outSR": "3857", "f": "geojson"}).content)
    assert geojson["features"][0]["geometry"]["coordinates"] == [5, 5]


@pytest.mark.django_db
def test_precomputed_count_extent_and_statistics(client, pass_through):
    pass_through(collection(rows(1), count=1234, extent=[[0, 0], [10, 20]],
                            statistics=[{"kind": "a", "n": 5}, {"kind": "b", "n": 7}]))
    assert get(client, returnCountOnly="true") == {"count": 1234}
    body = get(client, returnExtentOnly="true", returnCountOnly="true")
    assert body["count"] == 1234
    assert (body["extent"]["xmax"], body["extent"]["ymax"]) == (10, 20)
    stats = orjson.dumps([{"statisticType": "count", "onStatisticField": "size",
                           "outStatisticFieldName": "n"}]).decode()
    body = get(client, outStatistics=stats)
    assert [f["attributes"] for f in body["features"]] == [{"kind": "a", "n": 5},
                                                           {"kind": "b", "n": 7}]


@pytest.mark.django_db
def test_cached_providers_ignore_filters_applied(client, make_dataset):
    make_dataset("geojson", "source", collection(rows(1, 4), filtersApplied={"where": True}))
    assert sizes(get(client, where="size > 2")) == [4]


@pytest.mark.django_db
def test_pass_through_sources_get_checked_parameters_and_never_bad_ones(client, pass_through,
                                                                        monkeypatch):
    from providers.geojson.provider import GeoJSONProvider

    pass_through(collection(rows(1, 2, 3)))
    seen = []
    original = GeoJSONProvider.get_data

    def spy(self, request):
        seen.append(request.parsed)
        return original(self, request)

    monkeypatch.setattr(GeoJSONProvider, "get_data", spy)
    body = get(client, resultRecordCount="2", outSR="3857", returnGeometry="false")
    assert len(body["features"]) == 2
    (parsed,) = seen
    assert parsed.limit == 2 and parsed.out_sr.is_web_mercator and not parsed.return_geometry
    for bad in ({"resultRecordCount": "many"}, {"outSR": "999999"}, {"geometry": "{"},
                {"quantizationParameters": "{"}, {"returnCountOnly": "maybe"}):
        assert get(client, **bad)["error"]["code"] == 400
    assert len(seen) == 1  # the source was never asked with a bad parameter
