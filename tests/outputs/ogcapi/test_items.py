"""Items of OGC API - Features: paging, bbox, datetime, properties, property filters, sortby,
single items, formats, errors."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import pytest

from koop_app.models import Dataset
from tests.outputs.ogcapi.conftest import ROOT, body, get

pytestmark = pytest.mark.django_db


def items(client, collection="0", **params):
    response = get(client, f"/collections/{collection}/items", params)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/geo+json")
    return body(response)


def codes(answer):
    return sorted(f["properties"]["code"] for f in answer["features"])


def follow(client, href):
    parts = urlsplit(href)
    response = client.get(parts.path + "?" + parts.query)
    assert response.status_code == 200
    return body(response)


def test_paging_walks_every_feature_once_through_next_links(client, ogc):
    page = items(client, limit=4)
    seen, pages = [], 0
    while True:
        pages += 1
        assert page["numberMatched"] == 25
        assert page["numberReturned"] == len(page["features"]) <= 4
        assert page["timeStamp"].endswith("Z")
        seen += [f["id"] for f in page["features"]]
        nexts = [x["href"] for x in page["links"] if x["rel"] == "next"]
        if not nexts:
            break
        page = follow(client, nexts[0])
        assert any(x["rel"] == "prev" for x in page["links"])
    assert pages == 7
    assert sorted(seen) == list(range(1, 26))


def test_features_carry_ids_types_nulls_unicode_and_dates(client, ogc):
    answer = items(client, limit=10)
    first = {f["properties"]["code"]: f for f in answer["features"]}
    one = first[1]
    assert one["type"] == "Feature" and one["id"] == one["properties"]["code"] == 1
    assert one["geometry"] == {"type": "Point", "coordinates": [-10.0, 40.0]}
    assert one["properties"]["name"] == "Zürich"
    assert first[4]["properties"]["name"] == "東京"
    assert first[4]["properties"]["pop"] is None  # i % 7 == 3
    assert first[5]["properties"]["name"] is None
    assert one["properties"]["when"] == "2020-01-01T12:00:00Z"
    assert one["properties"]["ratio"] == 0.0


def test_lines_polygons_and_tables(client, ogc):
    roads = items(client, "1")
    assert roads["numberMatched"] == 6
    assert roads["features"][0]["geometry"]["type"] == "LineString"
    zones = items(client, "2", bbox="9,1,11,2")
    assert [f["properties"]["zone"] for f in zones["features"]] == ["Z1"]
    assert zones["features"][0]["geometry"]["type"] == "Polygon"
    table = items(client, "3")
    assert table["numberMatched"] == 3
    assert all(f["geometry"] is None for f in table["features"])
    assert {f["properties"]["site"] for f in table["features"]} == {"A", "B", None}


def test_limit_is_clamped_to_the_max_record_count(client, ogc):
    Dataset.objects.filter(pk=ogc.pk).update(max_record_count=10)
    answer = items(client, limit=1000)
    assert answer["numberReturned"] == len(answer["features"]) == 10
    nxt = [x["href"] for x in answer["links"] if x["rel"] == "next"][0]
    assert "limit=10" in nxt and "offset=10" in nxt
    assert len(items(client)["features"]) == 10  # the default: the layer's max record count


def test_offset_past_the_end(client, ogc):
    answer = items(client, offset=100)
    assert answer["features"] == [] and answer["numberReturned"] == 0
    assert not any(x["rel"] == "next" for x in answer["links"])


def test_bbox(client, ogc):
    assert codes(items(client, bbox="-10.5,39.5,-7.5,41.5")) == [1, 2, 3]
    assert codes(items(client, bbox="-10.5,39.5,0,-7.5,41.5,10")) == [1, 2, 3]  # 6 numbers
    # Across the antimeridian: from 170 east to -9 (west): the westernmost features.
    assert codes(items(client, bbox="170,39,-9,41")) == [1, 2]


def test_datetime(client, ogc):
    assert codes(items(client, datetime="2020-01-03T12:00:00Z")) == [3]
    assert codes(items(client, datetime="2020-01-03")) == [3]  # the whole day
    assert codes(items(client, datetime="2020-01-23T00:00:00Z/..")) == [23, 24, 25]
    assert codes(items(client, datetime="../2020-01-02T13:00:00Z")) == [1, 2]
    assert codes(items(client, datetime="2020-01-05T00:00:00Z/2020-01-06T23:00:00Z")) == [5, 6]
    assert codes(items(client, datetime="2020-01-05T13:00:00+01:00/2020-01-06")) == [5, 6]


def test_properties_select_fields(client, ogc):
    answer = items(client, properties="name,pop", limit=2)
    for feature in answer["features"]:
        assert set(feature["properties"]) == {"name", "pop"}
        assert isinstance(feature["id"], int)


def test_property_equality_filters(client, ogc):
    assert codes(items(client, name="Kraków")) == [3, 13, 23]
    assert codes(items(client, pop="500")) == [6]
    assert codes(items(client, name="O'Brien", pop="500")) == [6]
    roads = items(client, "1", lanes="2")
    assert sorted(f["properties"]["road"] for f in roads["features"]) == ["R2", "R5"]


def test_sortby(client, ogc):
    answer = items(client, sortby="-ratio", limit=3)
    assert [f["properties"]["code"] for f in answer["features"]] == [25, 24, 23]
    answer = items(client, sortby="+name,-code", limit=2, name="Kraków")
    assert [f["properties"]["code"] for f in answer["features"]] == [23, 13]


def test_skip_geometry(client, ogc):
    answer = items(client, skipGeometry="true", limit=2)
    assert all(f["geometry"] is None for f in answer["features"])


def test_single_item(client, ogc):
    response = get(client, "/collections/0/items/3")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/geo+json")
    assert response["Content-Crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    feature = body(response)
    assert feature["id"] == 3 and feature["properties"]["code"] == 3
    rels = {x["rel"] for x in feature["links"]}
    assert {"self", "alternate", "collection"} <= rels
    for missing in ("999", "abc", "3.5"):
        response = get(client, f"/collections/0/items/{missing}")
        assert response.status_code == 404
        assert response["Content-Type"] == "application/problem+json"
        assert body(response)["status"] == 404


def test_formats_and_negotiation(client, ogc):
    assert get(client, "/collections/0/items", {"f": "geojson"})["Content-Type"] \
        .startswith("application/geo+json")
    html = get(client, "/collections/0/items", HTTP_ACCEPT="text/html,*/*;q=0.8")
    assert html["Content-Type"].startswith("text/html")
    assert "Zürich" in html.content.decode()
    json = get(client, "/collections/0/items", HTTP_ACCEPT="application/geo+json")
    assert json["Content-Type"].startswith("application/geo+json")
    assert get(client, "", {"f": "xml"}).status_code == 400
    refused = get(client, "", HTTP_ACCEPT="image/png")
    assert refused.status_code == 406 and refused["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(("params", "parameter"), [
    ({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"), ({"offset": "-1"}, "offset"),
    ({"bbox": "1,2,3"}, "bbox"), ({"bbox": "a,b,c,d"}, "bbox"), ({"bbox": "0,5,1,1"}, "bbox"),
    ({"datetime": "yesterday"}, "datetime"), ({"datetime": "2020-02-01/2020-01-01"}, "datetime"),
    ({"properties": "nope"}, "properties"), ({"sortby": "nope"}, "sortby"),
    ({"crs": "EPSG:99999999"}, "crs"), ({"crs": "urn:nothing"}, "crs"),
    ({"pop": "many"}, "pop"), ({"unknown": "1"}, "unknown"),
    ({"filter": "pop >"}, "filter"), ({"filter": "nope = 1"}, "filter"),
    ({"filter-lang": "sql", "filter": "pop > 1"}, "filter-lang"),
    ({"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"}, "bbox-crs"),
])
def test_bad_parameters_are_400_problems(client, ogc, params, parameter):
    response = get(client, "/collections/0/items", params)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    problem = body(response)
    assert problem["status"] == 400 and problem["title"] == "Bad Request"
    assert parameter in problem["detail"]


def test_unknown_collection_and_dataset_are_404_problems(client, ogc):
    for path in ("/collections/9", "/collections/x/items", "/collections/9/queryables"):
        response = get(client, path)
        assert response.status_code == 404
        assert body(response)["status"] == 404
    response = client.get("/geojson/missing/OGCFeatureServer/collections")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_post_is_refused(client, ogc):
    response = client.post(ROOT + "/collections/0/items", {})
    assert response.status_code == 405 and body(response)["status"] == 405


def test_answers_are_cacheable(client, ogc):
    first = get(client, "/collections/0/items", {"limit": "2"})
    assert first["ETag"]
    again = get(client, "/collections/0/items", {"limit": "2"}, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304


def test_secured_dataset_refuses_anonymous_callers(client, make_dataset):
    from django.contrib.auth.models import User

    from tests.outputs.ogcapi.conftest import dataset_document

    make_dataset("geojson", "vault", dataset_document(), access=Dataset.SIGNED_IN)
    for path in ("", "/collections", "/collections/0/items", "/collections/0/items/1", "/api"):
        response = client.get(f"/geojson/vault/OGCFeatureServer{path}")
        assert response.status_code == 401, path
        assert response["Content-Type"] == "application/problem+json"
        assert response["WWW-Authenticate"] == "Bearer"
        assert body(response)["status"] == 401
    User.objects.create_user("alice", password="pw")
    token = body(client.post("/rest/generateToken", {
        "username": "alice", "password": "pw", "f": "json"}))["token"]
    answer = body(client.get("/geojson/vault/OGCFeatureServer/collections/0/items",
                             {"token": token, "limit": "5"}))
    assert answer["numberMatched"] == 25
    nxt = [x["href"] for x in answer["links"] if x["rel"] == "next"][0]
    assert urlencode({"token": token}) in nxt  # the next page is followable with the token
    response = client.get("/geojson/vault/OGCFeatureServer/collections/0/items",
                          {"token": token})
    assert "private" in response["Cache-Control"]
