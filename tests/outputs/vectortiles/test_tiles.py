"""Vector tiles: the VectorTileServer's documents, XYZ tiles and TileJSON, decoded with a real
MVT decoder (mapbox-vector-tile)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import mapbox_vector_tile
import orjson
import pytest
from django.contrib.auth import get_user_model

from koop_app import data
from koop_app.models import Dataset
from koop_app.outputs.vectortiles import documents
from koop_app.outputs.vectortiles.tiles import ORIGIN, Tile, lonlat_to_mercator, tile_cache
from tests.conftest import collection, feature, point, write_json

SERVICE = "/geojson/rest/services/places/VectorTileServer"
FOLDER = "/rest/services/geojson/places/VectorTileServer"
XYZ = "/geojson/places/VectorTileServer"
PASSWORD = "a-long-test-password-1"


def places() -> dict[str, Any]:
    return {
        "layers": [
            collection([
                feature({"name": "Zürich", "pop": 421878, "area": 87.88,
                         "founded": "1262-01-01"}, point(8.54, 47.37)),
                feature({"name": "Tokyo", "pop": 13960000, "area": None,
                         "founded": None}, point(139.69, 35.69)),
                feature({"name": "Quito", "pop": 2011388, "area": 372.4,
                         "founded": "1534-12-06"}, point(-78.47, -0.18)),
            ], metadata={"id": 0, "name": "Cities", "idField": "pop"}),
            collection([feature({"road": "R1"}, {"type": "LineString",
                                                 "coordinates": [[-10, -10], [10, 10]]})],
                       metadata={"id": 1, "name": "Roads"}),
            collection([feature({"zone": "Z"}, {"type": "Polygon", "coordinates": [
                [[100, -40], [140, -40], [140, -10], [100, -10], [100, -40]]]})],
                metadata={"id": 2, "name": "Zones", "drawingInfo": {"renderer": {
                    "type": "simple", "symbol": {
                        "type": "esriSFS", "style": "esriSFSSolid", "color": [200, 10, 20, 128],
                        "outline": {"type": "esriSLS", "color": [10, 20, 30, 255],
                                    "width": 1.5}}}}}),
        ],
        "tables": [collection([feature({"note": "no geometry"})],
                              metadata={"id": 3, "name": "Notes"})],
    }


@pytest.fixture(autouse=True)
def _empty_tile_cache():
    tile_cache.clear()
    yield
    tile_cache.clear()


@pytest.fixture
def dataset(make_dataset):
    return make_dataset("geojson", "places", places(), ttl=600)


def decode(content: bytes) -> dict[str, Any]:
    return mapbox_vector_tile.decode(content, default_options={"y_coord_down": True})


def tile_of(lon: float, lat: float, z: int) -> Tile:
    x = (lon + 180) / 360 * (1 << z)
    y = (1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi
         ) / 2 * (1 << z)
    return Tile(z, int(x), int(y))


def pixel_of(lon: float, lat: float, tile: Tile) -> tuple[float, float]:
    """Where (lon, lat) falls in ``tile``'s 4096 grid, y down."""
    mx, my = lonlat_to_mercator(lon, lat)
    xmin, _, _, ymax = tile.bounds
    return (mx - xmin) / tile.span * 4096, (ymax - my) / tile.span * 4096


@pytest.mark.django_db
def test_service_json_has_arcgis_shape(client, dataset):
    for base in (SERVICE, FOLDER):
        response = client.get(base, {"f": "json"})
        assert response.status_code == 200
        body = orjson.loads(response.content)
        assert body["capabilities"] == "TilesOnly" and body["type"] == "indexedVector"
        assert body["tiles"] == ["tile/{z}/{y}/{x}.pbf"]
        assert body["defaultStyles"] == "resources/styles"
        assert body["exportTilesAllowed"] is False
        info = body["tileInfo"]
        assert (info["rows"], info["cols"], info["dpi"], info["format"]) == (512, 512, 96, "pbf")
        assert info["origin"] == {"x": -20037508.342787, "y": 20037508.342787}
        assert info["spatialReference"] == {"wkid": 102100, "latestWkid": 3857}
        # ArcGIS's 512-pixel Web Mercator levels at 96 dpi.
        assert info["lods"][0] == {"level": 0, "resolution": pytest.approx(78271.516964),
                                   "scale": pytest.approx(295828763.7957775)}
        assert [lod["level"] for lod in info["lods"]] == list(range(body["maxzoom"] + 1))
        assert info["lods"][1]["resolution"] == pytest.approx(info["lods"][0]["resolution"] / 2)
        extent = body["fullExtent"]
        assert extent["spatialReference"]["latestWkid"] == 3857
        # The cities' and shapes' box (-78.47..140, -40..47.37) in metres.
        assert extent["xmin"] == pytest.approx(-78.47 * ORIGIN / 180)
        assert extent["xmax"] == pytest.approx(140 * ORIGIN / 180)
        assert body["minScale"] > body["maxScale"] > 0
        assert body["name"] == "places"


@pytest.mark.django_db
def test_listed_by_the_services_directory(client, dataset):
    body = orjson.loads(client.get("/rest/services/geojson", {"f": "json"}).content)
    types = {(s["name"], s["type"]) for s in body["services"]}
    assert ("geojson/places", "VectorTileServer") in types


@pytest.mark.django_db
def test_xyz_tile_holds_each_layer_where_its_features_are(client, dataset):
    tile = Tile(1, 1, 0)  # north-east quarter: Zürich, Tokyo
    response = client.get(f"{XYZ}/1/1/0.pbf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-protobuf"
    assert response["Access-Control-Allow-Origin"] == "*"  # for maps on any site
    layers = decode(response.content)
    assert set(layers) == {"Cities", "Roads"}  # zones are south; Notes is a table
    cities = {f["properties"]["name"]: f for f in layers["Cities"]["features"]}
    assert set(cities) == {"Zürich", "Tokyo"}
    zurich = cities["Zürich"]
    assert zurich["properties"] == {"name": "Zürich", "pop": 421878, "area": 87.88,
                                    "founded": -22342262400000}  # 1262-01-01
    assert zurich["id"] == 421878  # the object id: clients identify features by it
    assert "area" not in cities["Tokyo"]["properties"]  # nulls are left out
    x, y = zurich["geometry"]["coordinates"]
    expected = pixel_of(8.54, 47.37, tile)
    assert abs(x - expected[0]) <= 1 and abs(y - expected[1]) <= 1
    road = layers["Roads"]["features"][0]
    assert road["geometry"]["type"] == "LineString"
    # Clipped to the tile plus its buffer: from the equator at 0 (x 0, y 4096) to (10, 10).
    xs = [c[0] for c in road["geometry"]["coordinates"]]
    assert min(xs) >= -64 and max(xs) == pytest.approx(pixel_of(10, 10, tile)[0], abs=1)
    assert layers["Cities"]["extent"] == 4096


@pytest.mark.django_db
def test_polygons_and_the_arcgis_row_column_order(client, dataset):
    tile = tile_of(120, -25, 3)
    xyz = client.get(f"{XYZ}/{tile.z}/{tile.x}/{tile.y}.pbf")
    arcgis = client.get(f"{SERVICE}/tile/{tile.z}/{tile.y}/{tile.x}.pbf")
    assert xyz.content == arcgis.content and xyz.content
    zones = decode(arcgis.content)["Zones"]["features"]
    assert zones[0]["geometry"]["type"] == "Polygon"
    assert zones[0]["properties"]["zone"] == "Z"
    ring = zones[0]["geometry"]["coordinates"][0]
    xs, ys = [c[0] for c in ring], [c[1] for c in ring]
    west, north = pixel_of(100, -10, tile)
    east, south = pixel_of(140, -40, tile)
    assert min(xs) == pytest.approx(max(west, -64), abs=1)
    assert max(xs) == pytest.approx(min(east, 4160), abs=1)
    assert min(ys) == pytest.approx(max(north, -64), abs=1)
    assert max(ys) == pytest.approx(min(south, 4160), abs=1)


@pytest.mark.django_db
def test_empty_tile_is_an_empty_mvt(client, dataset):
    response = client.get(f"{XYZ}/5/0/0.pbf")  # the Arctic west of Alaska
    assert response.status_code == 200 and response.content == b""
    assert decode(response.content) == {}
    assert client.get(f"{SERVICE}/tile/5/0/0.pbf").content == b""


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["23/0/0.pbf", "1/2/0.pbf", "1/0/2.pbf", "-1/0/0.pbf",
                                  "a/0/0.pbf", "1/0/1e3.pbf", "99999999999999999999/0/0.pbf"])
def test_tiles_outside_the_scheme_are_404(client, dataset, path):
    response = client.get(f"{XYZ}/{path}")
    assert response.status_code == 404 and response["Access-Control-Allow-Origin"] == "*"
    assert orjson.loads(response.content)["error"]["code"] == 404
    z, x, y = path.removesuffix(".pbf").split("/")
    arcgis = client.get(f"{SERVICE}/tile/{z}/{y}/{x}.pbf")
    # Under /rest/ errors are ArcGIS Server's JSON (HTTP 200), but a missing tile keeps its
    # HTTP 404 as ArcGIS Server's tile answers do (map clients draw nothing there).
    assert orjson.loads(arcgis.content)["error"]["code"] == 404 and arcgis.status_code == 404


@pytest.mark.django_db
def test_unknown_dataset_is_404(client, dataset):
    assert client.get("/geojson/nope/VectorTileServer/0/0/0.pbf").status_code == 404
    body = orjson.loads(client.get("/geojson/rest/services/nope/VectorTileServer").content)
    assert body["error"]["code"] == 404


@pytest.mark.django_db
def test_etag_304_and_a_refreshed_dataset_serves_new_tiles(client, dataset, data_dir):
    first = client.get(f"{XYZ}/0/0/0.pbf")
    etag = first["ETag"]
    assert first["Cache-Control"].startswith("public, max-age=")
    assert client.get(f"{XYZ}/0/0/0.pbf", HTTP_IF_NONE_MATCH=etag).status_code == 304
    other = client.get(f"{XYZ}/1/0/0.pbf", HTTP_IF_NONE_MATCH=etag)
    assert other.status_code == 200  # another tile, another answer
    document = places()
    document["layers"][0]["features"].append(
        feature({"name": "Lima", "pop": 9751717, "area": 2672.3, "founded": None},
                point(-77.04, -12.05)))
    write_json(data_dir / "places.geojson", document)
    data.refresh(dataset)
    data.reset_process_state()
    fresh = client.get(f"{XYZ}/0/0/0.pbf", HTTP_IF_NONE_MATCH=etag)
    assert fresh.status_code == 200 and fresh["ETag"] != etag
    names = {f["properties"]["name"] for f in decode(fresh.content)["Cities"]["features"]}
    assert names == {"Zürich", "Tokyo", "Quito", "Lima"}


@pytest.mark.django_db
def test_secured_dataset_refuses_anonymous_callers(client, make_dataset):
    alice = get_user_model().objects.create_user("alice", password=PASSWORD)
    vault = make_dataset("geojson", "places", places(), access=Dataset.RESTRICTED)
    vault.allowed_users.add(alice)
    response = client.get(f"{XYZ}/0/0/0.pbf")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Bearer"
    assert response["Access-Control-Allow-Origin"] == "*"  # the map can read the refusal
    assert client.get(f"{XYZ}/tiles.json").status_code == 401
    for path in ("", "/tile/0/0/0.pbf", "/resources/styles/root.json",
                 "/tilemap/0/0/0/1/1"):
        body = orjson.loads(client.get(SERVICE + path).content)
        assert body["error"]["code"] == 499, path
    token = orjson.loads(client.post("/rest/generateToken", {
        "username": "alice", "password": PASSWORD, "f": "json"}).content)["token"]
    allowed = client.get(f"{XYZ}/0/0/0.pbf", {"token": token})
    assert allowed.status_code == 200 and "Cities" in decode(allowed.content)
    assert allowed["Cache-Control"].startswith("private")
    arcgis = client.get(f"{SERVICE}/tile/0/0/0.pbf", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert arcgis.content == allowed.content
    tiles = orjson.loads(client.get(f"{XYZ}/tiles.json", {"token": token}).content)["tiles"]
    assert tiles[0].endswith("{y}.pbf?" + urlencode({"token": token}))


@pytest.mark.django_db
def test_default_style_draws_each_layer_with_its_colors(client, dataset):
    for path in ("/resources/styles/root.json", "/resources/styles"):
        style = orjson.loads(client.get(SERVICE + path).content)
        assert style["version"] == 8
        assert style["sources"]["esri"]["type"] == "vector"
        assert style["sources"]["esri"]["url"] == f"http://testserver{SERVICE}"
        kinds = [(x["source-layer"], x["type"]) for x in style["layers"]]
        assert kinds == [("Cities", "circle"), ("Roads", "line"), ("Zones", "fill"),
                         ("Zones", "line")]
        assert len({x["id"] for x in style["layers"]}) == len(style["layers"])
        # Zones carry the provider's own renderer (kept with the data); Cities have none: the
        # FeatureServer's default symbol (SIMPLE_SYMBOLS).
        fill = style["layers"][2]["paint"]
        assert fill["fill-color"] == "rgb(200, 10, 20)"
        assert fill["fill-opacity"] == pytest.approx(128 / 255, abs=1e-3)
        assert style["layers"][0]["paint"]["circle-color"] == "rgb(0, 112, 255)"
    folder = orjson.loads(client.get(FOLDER + "/resources/styles/root.json").content)
    assert folder["sources"]["esri"]["url"] == f"http://testserver{FOLDER}"


@pytest.mark.django_db
def test_style_follows_a_layers_own_simple_renderer(dataset, rf):
    """A layer whose metadata holds a drawingInfo with a simple renderer is drawn with it."""
    layers = data.get_layers(dataset, data.provider_request(dataset))
    zones = layers.layer(2)
    renderer = {"type": "simple", "symbol": {
        "type": "esriSFS", "style": "esriSFSSolid", "color": [200, 10, 20, 128],
        "outline": {"type": "esriSLS", "color": [10, 20, 30, 255], "width": 1.5}}}
    schema = replace(zones.schema, metadata={**zones.schema.metadata,
                                             "drawingInfo": {"renderer": renderer}})
    drawn = replace(layers, layers=(replace(zones, schema=schema),))
    fill, outline = documents.style_layers(dataset, drawn, "esri")
    assert fill["paint"]["fill-color"] == "rgb(200, 10, 20)"
    assert fill["paint"]["fill-opacity"] == pytest.approx(128 / 255, abs=1e-3)
    assert outline["paint"]["line-color"] == "rgb(10, 20, 30)"
    assert outline["paint"]["line-width"] == 2.0  # 1.5 points at 96 dpi


@pytest.mark.django_db
def test_tilejson_lists_layers_fields_bounds_and_zooms(client, dataset):
    body = orjson.loads(client.get(f"{XYZ}/tiles.json").content)
    assert body["tilejson"] == "3.0.0" and body["scheme"] == "xyz"
    assert body["tiles"] == [f"http://testserver{XYZ}/{{z}}/{{x}}/{{y}}.pbf"]
    assert body["minzoom"] == 0 and body["maxzoom"] == 22
    assert body["bounds"] == pytest.approx([-78.47, -40, 140, 47.37])
    layers = {x["id"]: x for x in body["vector_layers"]}
    assert set(layers) == {"Cities", "Roads", "Zones"}
    assert layers["Cities"]["fields"]["name"] == "String"
    assert set(layers["Cities"]["fields"]) == {"pop", "name", "area", "founded"}
    style = orjson.loads(client.get(f"{XYZ}/style.json").content)
    assert style["sources"]["esri"]["url"] == f"http://testserver{XYZ}/tiles.json"


@pytest.mark.django_db
def test_tilemap_marks_tiles_with_data(client, dataset):
    body = orjson.loads(client.get(f"{SERVICE}/tilemap/2/0/0/4/4").content)
    assert body["adjusted"] is False
    assert body["location"] == {"left": 0, "top": 0, "width": 4, "height": 4}
    # Data spans lon -78.47..140 (columns 1..3), lat -40..47.37 (rows 1..2).
    assert body["data"] == [0, 0, 0, 0,
                            0, 1, 1, 1,
                            0, 1, 1, 1,
                            0, 0, 0, 0]
    cut = orjson.loads(client.get(f"{SERVICE}/tilemap/1/1/1/8/8").content)
    assert cut["adjusted"] is True and cut["location"]["width"] == 1
    assert len(cut["data"]) == 1
    bad = orjson.loads(client.get(f"{SERVICE}/tilemap/1/5/0/2/2").content)
    assert bad["error"]["code"] == 404


@pytest.mark.django_db
def test_dataset_of_tables_only_has_empty_tiles(client, make_dataset):
    make_dataset("geojson", "notes", collection([feature({"n": 1}), feature({"n": 2})]))
    response = client.get("/geojson/notes/VectorTileServer/0/0/0.pbf")
    assert response.status_code == 200 and response.content == b""
    assert orjson.loads(client.get("/geojson/notes/VectorTileServer/tiles.json").content)[
        "vector_layers"] == []


@pytest.mark.django_db
def test_a_dense_tile_keeps_the_smallest_object_ids(client, make_dataset, settings):
    """Past the layer's tile record limit, a tile holds the features with the smallest ids:
    thinned evenly, and a point drawn at one zoom is drawn at every higher zoom."""
    settings.KOOP = {**settings.KOOP, "MAX_RESULT_RECORDS": 5}
    make_dataset("geojson", "dense", collection(
        [feature({"n": i}, point(1 + (i * 7) % 20 / 10, 1 + (i * 3) % 20 / 10))
         for i in range(1, 41)], metadata={"idField": "n"}))
    world = decode(client.get("/geojson/dense/VectorTileServer/0/0/0.pbf").content)
    assert sorted(f["id"] for f in world["dense"]["features"]) == [1, 2, 3, 4, 5]
    closer = decode(client.get("/geojson/dense/VectorTileServer/4/8/7.pbf").content)
    assert sorted(f["id"] for f in closer["dense"]["features"]) == [1, 2, 3, 4, 5]


@pytest.mark.django_db
def test_pass_through_tiles_are_built_each_time_and_not_cached(client, dataset):
    from koop_app.models import Provider

    provider = Provider.objects.get(name="geojson")  # saved as the admin does: seen at once
    provider.cache_policy = Provider.PASS_THROUGH
    provider.save()
    response = client.get(f"{XYZ}/1/1/0.pbf")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert "ETag" not in response
    names = {f["properties"]["name"] for f in decode(response.content)["Cities"]["features"]}
    assert names == {"Zürich", "Tokyo"}
    assert len(tile_cache) == 0


@pytest.mark.django_db
def test_engine_mvt_layer_directly(dataset):
    """``engine.mvt_layer``: a page of features in Web Mercator -> one MVT layer and its count;
    no feature -> b""; an answer without geometries is refused."""
    from koop_app.outputs import serving
    from koop_app.outputs.vectortiles.tiles import tile_params
    from koop_app.query.engine import mvt_layer

    layers = data.get_layers(dataset, data.provider_request(dataset))
    cities = layers.layer(0)
    tile = Tile(0, 0, 0)
    _, result = serving.run_query(dataset, cities, tile_params(tile, "esriGeometryPoint"))
    blob, count = mvt_layer(result, "Städte", tile.bounds)
    assert count == 3 and [f["id"] for f in decode(blob)["Städte"]["features"]] == [
        421878, 2011388, 13960000]
    _, empty = serving.run_query(dataset, cities, tile_params(Tile(5, 0, 0), "esriGeometryPoint"))
    assert mvt_layer(empty, "Städte", Tile(5, 0, 0).bounds) == (b"", 0)
    _, counted = serving.run_query(dataset, cities, {"where": "1=1", "returnCountOnly": "true"})
    with pytest.raises(ValueError):
        mvt_layer(counted, "Städte", tile.bounds)
