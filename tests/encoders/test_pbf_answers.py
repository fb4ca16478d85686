"""``f=pbf`` through the query route: the same answers as ``f=json``, read by the ArcGIS Maps
SDK's own parser and by protobufjs (decoders that are not ours, see test_pbf.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.conftest import body_of, collection, feature, point
from tests.encoders.test_pbf import decode, sdk_parts  # noqa: F401  (a fixture)

BASE = "/geojson/rest/services/{}/FeatureServer/0"
WEB_EXTENT = {"xmin": -20037508.34, "ymin": -20037508.34, "xmax": 20037508.34,
              "ymax": 20037508.34, "spatialReference": {"wkid": 102100, "latestWkid": 3857}}


def square(x: float, y: float, size: float) -> list[list[float]]:
    return [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]


@pytest.fixture
def layers(make_dataset) -> None:
    kinds = ("oak", "Elm", None)
    make_dataset("geojson", "pts", collection(
        [feature({"name": kinds[i % 3], "rank": i, "score": i / 4,
                  "when": f"2024-01-{i % 28 + 1:02d}T00:00:00Z"}, point(i * 3 - 170, i - 60))
         for i in range(100)] + [feature({"name": "none", "rank": 100}, None)]))
    make_dataset("geojson", "lines", collection(
        [feature({"name": kinds[i % 3], "rank": i},
                 {"type": "MultiLineString", "coordinates": [
                     [[i, 0], [i + 0.5, 1], [i + 1, 0]], [[i, 10], [i + 2, 12]]]}
                 if i % 2 else
                 {"type": "LineString", "coordinates": [[i, -5], [i + 1, -4], [i + 3, -6]]})
         for i in range(40)]))
    make_dataset("geojson", "shapes", collection(
        [feature({"name": kinds[i % 3], "rank": i},
                 {"type": "Polygon", "coordinates": [square(i * 5 - 100, 10, 4),
                                                     square(i * 5 - 99, 11, 1)[::-1]]}
                 if i % 2 else
                 {"type": "MultiPolygon", "coordinates": [[square(i * 5 - 100, -20, 3)],
                                                          [square(i * 5 - 100, -30, 2)]]})
         for i in range(30)]))


def get(client, layer: str, **params: Any):
    response = client.get(BASE.format(layer) + "/query", params)
    assert response.status_code == 200
    return response


def as_json(client, layer: str, **params: Any) -> dict[str, Any]:
    return orjson.loads(body_of(get(client, layer, f="json", **params)))


def as_pbf(client, decode, layer: str, **params: Any) -> dict[str, Any]:  # noqa: F811
    response = get(client, layer, f="pbf", **params)
    assert response["Content-Type"] == "application/x-protobuf"
    return decode(body_of(response))


def parts_of(geometry: dict[str, Any] | None, transform: dict[str, Any] | None = None
             ) -> list[list[tuple[float, float]]] | None:
    """Parts of (x, y) in world coordinates; a quantized JSON geometry is read back with its
    answer's ``transform`` (points absolute, each path's vertices after the first as steps)."""
    parts = sdk_parts(geometry)
    if parts is None or transform is None:
        return parts
    sx, sy = transform["scale"][:2]
    tx, ty = transform["translate"][:2]
    flip = -1 if transform["originPosition"] == "upperLeft" else 1
    out = []
    for part in parts:
        x = y = 0
        world = []
        for i, (qx, qy) in enumerate(part):
            x, y = (qx, qy) if i == 0 or "x" in geometry else (x + qx, y + qy)
            world.append((tx + x * sx, ty + flip * y * sy))
        out.append(world)
    return out


@pytest.mark.django_db
@pytest.mark.parametrize("layer", ["pts", "lines", "shapes"])
@pytest.mark.parametrize("extra", [
    {}, {"outSR": "102100"}, {"orderByFields": "rank DESC", "where": "rank > 3"},
    {"outSR": "102100", "quantizationParameters": orjson.dumps(
        {"mode": "edit", "originPosition": "upperLeft", "tolerance": 0.001,
         "extent": WEB_EXTENT}).decode()},
    {"quantizationParameters": orjson.dumps(
        {"mode": "edit", "originPosition": "lowerLeft", "tolerance": 1e-7,
         "extent": {"xmin": -180, "ymin": -90, "xmax": 180, "ymax": 90}}).decode()},
    {"returnGeometry": "false", "outFields": "name,rank"},
])
def test_features_are_the_json_answers(client, layers, decode, layer, extra):  # noqa: F811
    extra = {"outFields": "*", **extra}
    want = as_json(client, layer, **extra)
    got = as_pbf(client, decode, layer, **extra)
    sdk = got["sdk"]
    assert sdk["objectIdFieldName"] == want["objectIdFieldName"]
    assert [f["name"] for f in sdk["fields"]] == [f["name"] for f in want["fields"]]
    assert [f["type"] for f in sdk["fields"]] == [f["type"] for f in want["fields"]]
    assert sdk.get("exceededTransferLimit", False) == want["exceededTransferLimit"]
    assert len(sdk["features"]) == len(want["features"])
    transform = got["protobufjs"]["queryResult"]["featureResult"]["transform"]
    assert transform is not None  # always a transform
    cell = float(transform["scale"]["xScale"])
    for a, b in zip(sdk["features"], want["features"], strict=True):
        assert a["attributes"] == b["attributes"]
        if "geometry" not in b:
            continue
        mine = parts_of(a.get("geometry"))
        theirs = parts_of(b["geometry"], want.get("transform"))
        if theirs is None:
            assert mine is None
            continue
        assert len(mine) == len(theirs)
        for part_a, part_b in zip(mine, theirs, strict=True):
            assert part_a == [pytest.approx(xy, abs=cell) for xy in part_b]


@pytest.mark.django_db
def test_view_mode_tile_queries_are_small_and_drawn_on_the_grid(client, layers, decode):  # noqa: F811
    params = {"outSR": "102100", "resultType": "tile", "where": "1=1", "quantizationParameters":
              orjson.dumps({"mode": "view", "originPosition": "upperLeft", "tolerance": 50000,
                            "extent": WEB_EXTENT}).decode()}
    got = as_pbf(client, decode, "shapes", **params)
    result = got["protobufjs"]["queryResult"]["featureResult"]
    assert result["transform"]["quantizeOriginPostion"] == "upperLeft"
    assert float(result["transform"]["scale"]["xScale"]) == 50000
    assert float(result["transform"]["translate"]["yTranslate"]) == WEB_EXTENT["ymax"]
    for feature_message in result["features"]:
        geometry = feature_message.get("geometry")
        if geometry is None:
            continue
        coords = [int(c) for c in geometry["coords"]]
        start = 0
        for length in geometry["lengths"]:
            deltas = list(zip(coords[start * 2 + 2:(start + int(length)) * 2:2],
                              coords[start * 2 + 3:(start + int(length)) * 2:2],
                              strict=True))
            assert (0, 0) not in deltas  # no vertex repeats the cell of the one before
            start += int(length)
    json_answer = as_json(client, "shapes", **params)
    assert json_answer["transform"]["scale"][:2] == [50000, 50000]
    assert len(body_of(get(client, "shapes", f="pbf", **params))) < len(
        body_of(get(client, "shapes", f="json", **params)))


@pytest.mark.django_db
def test_counts_ids_and_extents(client, layers, decode):  # noqa: F811
    for where in ("1=1", "rank < 10"):
        count = as_json(client, "pts", where=where, returnCountOnly="true")["count"]
        decoded = as_pbf(client, decode, "pts", where=where, returnCountOnly="true")
        assert decoded["protobufjs"]["queryResult"]["countResult"]["count"] == str(count)
        ids = as_json(client, "pts", where=where, returnIdsOnly="true")
        decoded = as_pbf(client, decode, "pts", where=where, returnIdsOnly="true")
        result = decoded["protobufjs"]["queryResult"]["idsResult"]
        assert result["objectIdFieldName"] == ids["objectIdFieldName"]
        assert [int(i) for i in result["objectIds"]] == ids["objectIds"]
    for extra in ({}, {"returnCountOnly": "true"}, {"outSR": "3857"}):
        want = as_json(client, "shapes", returnExtentOnly="true", **extra)
        decoded = as_pbf(client, decode, "shapes", returnExtentOnly="true", **extra)
        result = decoded["protobufjs"]["queryResult"]["extentCountResult"]
        for key, wire in (("xmin", "XMin"), ("ymin", "YMin"), ("xmax", "XMax"),
                          ("ymax", "YMax")):
            assert result["extent"][wire] == pytest.approx(want["extent"][key])
        if "count" in want:
            assert int(result["count"]) == want["count"]
    empty = as_pbf(client, decode, "pts", where="rank < 0", returnIdsOnly="true")
    assert empty["protobufjs"]["queryResult"]["idsResult"]["objectIds"] == []


@pytest.mark.django_db
def test_statistics_and_tables_of_values(client, layers, decode):  # noqa: F811
    stats = orjson.dumps([{"statisticType": "count", "onStatisticField": "rank",
                           "outStatisticFieldName": "n"},
                          {"statisticType": "avg", "onStatisticField": "score",
                           "outStatisticFieldName": "mean"}]).decode()
    want = as_json(client, "pts", outStatistics=stats, groupByFieldsForStatistics="name",
                   orderByFields="name")
    got = as_pbf(client, decode, "pts", outStatistics=stats, groupByFieldsForStatistics="name",
                 orderByFields="name")["sdk"]
    assert [f["attributes"] for f in got["features"]] == [
        f["attributes"] for f in want["features"]]


@pytest.mark.django_db
def test_pbf_errors_are_json_and_pbf_is_advertised(client, layers):
    response = get(client, "pts", f="pbf", where="nope = 1")
    assert response["Content-Type"].startswith("application/json")
    assert orjson.loads(response.content)["error"]["code"] == 400
    info = orjson.loads(client.get(BASE.format("pts"), {"f": "json"}).content)
    assert "PBF" in info["supportedQueryFormats"].split(", ")
    assert info["supportsCoordinatesQuantization"] is True
    service = orjson.loads(client.get(BASE.format("pts")[:-2], {"f": "json"}).content)
    assert "PBF" in service["supportedQueryFormats"]
    # f=pbf is a query format, not one of the layer resource's
    assert orjson.loads(client.get(BASE.format("pts"), {"f": "pbf"}).content)["error"]
