"""Styles from a layer's drawing info (Esri renderers) drawn on real engine rows; legends.

Layers carry a renderer of their own in ``metadata["drawingInfo"]``; here it is set on the
loaded layer, and its rows come from the engine as GetMap reads them.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import shapely
from PIL import Image

from koop_app import data
from koop_app.outputs.serving import run_query
from koop_app.outputs.wms import render, styles
from koop_app.outputs.wms.legend import legend_png
from koop_app.query.engine import WKB_COLUMN, page_arrow
from tests.outputs.wms.conftest import SPOT_A, SPOT_B, SPOT_C, atlas, image_of, pixel_of, wms

pytestmark = pytest.mark.django_db
RED, BLUE, GREY = [255, 0, 0, 255], [0, 0, 255, 255], [128, 128, 128, 255]
WORLD = (-180.0, -90.0, 180.0, 90.0)


def marker(color, size=12, style="esriSMSSquare"):
    return {"type": "esriSMS", "style": style, "color": color, "size": size,
            "outline": {"color": color, "width": 1}}


def with_renderer(table, renderer, transparency=0):
    metadata = {**table.schema.metadata,
                "drawingInfo": {"renderer": renderer, "transparency": transparency}}
    return dataclasses.replace(table, schema=dataclasses.replace(table.schema,
                                                                 metadata=metadata))


def draw(dataset, table, style):
    _, result = run_query(dataset, table, {"outFields": ",".join(style.fields) or "*"})
    rows, _ = page_arrow(result.page, points_as_xy=False)
    geoms = shapely.from_wkb(rows.column(WKB_COLUMN).to_numpy(zero_copy_only=False))
    frame = render.Frame(WORLD, 360, 180)
    image = render.blank(frame, False, (255, 255, 255))
    render.draw_layer(image, geoms, style.classify(rows), style.symbols, frame)
    return image.convert("RGB")


def at(image, spot):
    return image.getpixel(pixel_of(*spot, WORLD, 360, 180))


@pytest.fixture
def spots(dataset):
    return data.get_layers(dataset, data.provider_request(dataset)).layer(0)


def test_unique_values(dataset, spots):
    table = with_renderer(spots, {
        "type": "uniqueValue", "field1": "kind", "defaultSymbol": marker(GREY),
        "uniqueValueInfos": [{"value": "red", "label": "Red", "symbol": marker(RED)},
                             {"value": "blue", "label": "Blue", "symbol": marker(BLUE)}]})
    default, plain = styles.layer_styles(table)
    assert (default.name, plain.name) == ("default", "simple")
    image = draw(dataset, table, default)
    assert at(image, SPOT_A) == (255, 0, 0)
    assert at(image, SPOT_B) == (0, 0, 255)
    assert at(image, SPOT_C) == (128, 128, 128)  # green: the default symbol


def test_class_breaks_and_transparency(dataset, spots):
    table = with_renderer(spots, {
        "type": "classBreaks", "field": "value", "minValue": 0,
        "classBreakInfos": [{"classMaxValue": 10, "symbol": marker(RED, style="esriSMSCircle")},
                            {"classMaxValue": 100, "symbol": marker(BLUE)}]},
        transparency=50)
    image = draw(dataset, table, styles.find_style(table, "default"))
    r, g, b = at(image, SPOT_A)
    assert r > 200 and 100 < g < 160  # red at half opacity over white
    assert at(image, SPOT_B)[2] > 200 and at(image, SPOT_B)[0] < 160
    assert at(image, SPOT_C) == (255, 255, 255)  # a null value: no class, no default


def test_simple_renderer_lines_and_fills(dataset):
    layers = data.get_layers(dataset, data.provider_request(dataset))
    roads = with_renderer(layers.layer(1), {"type": "simple", "symbol": {
        "type": "esriSLS", "style": "esriSLSSolid", "color": RED, "width": 4}})
    image = draw(dataset, roads, styles.find_style(roads, ""))
    assert image.getpixel(pixel_of(0, 40, WORLD, 360, 180)) == (255, 0, 0)
    parks = with_renderer(layers.layer(2), {"type": "simple", "symbol": {
        "type": "esriSFS", "style": "esriSFSSolid", "color": BLUE,
        "outline": {"type": "esriSLS", "color": RED, "width": 1}}})
    image = draw(dataset, parks, styles.find_style(parks, "default"))
    assert image.getpixel(pixel_of(-15, -40, WORLD, 360, 180)) == (0, 0, 255)
    assert image.getpixel(pixel_of(0, -40, WORLD, 360, 180)) == (255, 255, 255)  # the pond
    # A renderer that cannot be read (no such field) falls back to the default symbols.
    broken = with_renderer(layers.layer(0), {"type": "uniqueValue", "field1": "nope"})
    assert [s.name for s in styles.layer_styles(broken)] == ["default"]


def test_legend_graphic(client, dataset, spots):
    table = with_renderer(spots, {
        "type": "uniqueValue", "field1": "kind",
        "uniqueValueInfos": [{"value": "red", "label": "Red", "symbol": marker(RED)},
                             {"value": "blue", "label": "Blue", "symbol": marker(BLUE)}]})
    legend = Image.open(io.BytesIO(legend_png([(table, styles.find_style(table, ""))])))
    pixels = np.asarray(legend.convert("RGBA"))
    assert legend.size[1] == 3 * 20  # a title row and a row per class
    assert (pixels[20:40, :20, 0] == 255).any() and (pixels[40:60, :20, 2] == 255).any()
    served = image_of(wms(client, SERVICE="WMS", REQUEST="GetLegendGraphic", LAYER="2",
                          FORMAT="image/png"))
    assert served.size[1] == 20


def test_a_providers_own_drawing_info_styles_the_map_and_the_layer(client, make_dataset):
    """End to end: the renderer a provider declares is kept with the data (normalize), shown
    by the FeatureServer's layer JSON and drawn by GetMap."""
    source = atlas()
    renderer = {"type": "uniqueValue", "field1": "kind",
                "uniqueValueInfos": [{"value": "red", "symbol": marker(RED, 16)},
                                     {"value": "blue", "symbol": marker(BLUE, 16)}],
                "defaultSymbol": marker(GREY, 16)}
    source["layers"][0]["metadata"]["drawingInfo"] = {"renderer": renderer}
    make_dataset("geojson", "atlas", source)
    layer = client.get("/geojson/rest/services/atlas/FeatureServer/0", {"f": "json"}).json()
    assert layer["drawingInfo"]["renderer"] == renderer
    image = image_of(wms(client, SERVICE="WMS", VERSION="1.3.0", REQUEST="GetMap", LAYERS="0",
                         STYLES="", CRS="CRS:84", BBOX="-180,-90,180,90", WIDTH="360",
                         HEIGHT="180", FORMAT="image/png")).convert("RGB")
    assert at(image, SPOT_A) == tuple(RED[:3]) and at(image, SPOT_B) == tuple(BLUE[:3])
    assert at(image, SPOT_C) == tuple(GREY[:3])
