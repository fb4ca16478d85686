"""GetMap: feature pixels where they belong in each CRS's axis order; formats, background."""

from __future__ import annotations

import pytest
from pyproj import Transformer

from tests.outputs.wms.conftest import (
    PARK,
    POND,
    ROAD_Y,
    SPOT_A,
    SPOT_B,
    SPOT_C,
    image_of,
    pixel_of,
    wms,
)

pytestmark = pytest.mark.django_db
WHITE = (255, 255, 255)


def get_map(client, **params):
    params = {"SERVICE": "WMS", "VERSION": "1.3.0", "REQUEST": "GetMap", "STYLES": "",
              "FORMAT": "image/png", **params}
    return wms(client, **params)


def is_blue(rgb) -> bool:
    """The default symbols' colours (blues) over white."""
    r, g, b = rgb[:3]
    return b > 150 and r < 200 and b - r > 40


def check_world(image, bbox, project=lambda x, y: (x, y)):
    rgb = image.convert("RGB")
    width, height = image.size
    for spot in (SPOT_A, SPOT_B, SPOT_C):
        assert is_blue(rgb.getpixel(pixel_of(*project(*spot), bbox, width, height))), spot
    # The road, halfway; the park's fill; its pond is a hole; empty sea.
    assert is_blue(rgb.getpixel(pixel_of(*project(0, ROAD_Y), bbox, width, height)))
    assert is_blue(rgb.getpixel(pixel_of(*project(-15, -40), bbox, width, height)))
    pond = project((POND[0] + POND[2]) / 2, (POND[1] + POND[3]) / 2)
    assert rgb.getpixel(pixel_of(*pond, bbox, width, height)) == WHITE
    assert rgb.getpixel(pixel_of(*project(-150, -70), bbox, width, height)) == WHITE
    assert rgb.getpixel(pixel_of(*project(150, 20), bbox, width, height)) == WHITE


def test_epsg_4326_is_latitude_first(client, dataset):
    response = get_map(client, LAYERS="atlas", CRS="EPSG:4326", BBOX="-90,-180,90,180",
                       WIDTH=720, HEIGHT=360)
    image = image_of(response)
    assert image.format == "PNG" and image.size == (720, 360)
    check_world(image, (-180, -90, 180, 90))
    assert response["ETag"] and "max-age" in response["Cache-Control"]
    again = client.get(response.request["PATH_INFO"] + "?" + response.request["QUERY_STRING"],
                       HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304


def test_crs84_and_1_1_1_are_longitude_first(client, dataset):
    image = image_of(get_map(client, LAYERS="0,1,2", STYLES=",,", CRS="CRS:84",
                             BBOX="-180,-90,180,90", WIDTH=720, HEIGHT=360))
    check_world(image, (-180, -90, 180, 90))
    old = wms(client, SERVICE="WMS", VERSION="1.1.1", REQUEST="GetMap", LAYERS="atlas",
              STYLES="", SRS="EPSG:4326", BBOX="-180,-90,180,90", WIDTH=720, HEIGHT=360,
              FORMAT="image/png")
    check_world(image_of(old), (-180, -90, 180, 90))


def test_web_mercator(client, dataset):
    half = 20037508.342789244
    bbox = (-half, -half, half, half)
    image = image_of(get_map(client, LAYERS="atlas", CRS="EPSG:3857",
                             BBOX=",".join(map(str, bbox)), WIDTH=512, HEIGHT=512))
    forward = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    check_world(image, bbox, forward.transform)


def test_a_zoomed_map_of_one_layer(client, dataset):
    # Around spot A only, in a box of its own: the marker at the centre, the rest empty.
    bbox = (SPOT_A[0] - 1, SPOT_A[1] - 1, SPOT_A[0] + 1, SPOT_A[1] + 1)
    image = image_of(get_map(client, LAYERS="Spots", CRS="CRS:84",
                             BBOX=",".join(map(str, bbox)), WIDTH=100, HEIGHT=100)).convert(
        "RGB")
    assert is_blue(image.getpixel((50, 50)))
    assert image.getpixel((5, 5)) == WHITE
    # The park's edge across a zoomed map: fill on one side, white on the other.
    bbox = (PARK[0] - 1, -41, PARK[0] + 1, -39)
    image = image_of(get_map(client, LAYERS="2", CRS="CRS:84", BBOX=",".join(map(str, bbox)),
                             WIDTH=200, HEIGHT=200)).convert("RGB")
    assert image.getpixel((20, 100)) == WHITE
    assert is_blue(image.getpixel((180, 100)))


def test_transparent_background_and_colours(client, dataset):
    image = image_of(get_map(client, LAYERS="atlas", CRS="CRS:84", BBOX="-180,-90,180,90",
                             WIDTH=360, HEIGHT=180, TRANSPARENT="TRUE"))
    assert image.mode == "RGBA"
    assert image.getpixel((10, 10))[3] == 0
    assert image.getpixel(pixel_of(*SPOT_A, (-180, -90, 180, 90), 360, 180))[3] > 0
    black = image_of(get_map(client, LAYERS="atlas", CRS="CRS:84", BBOX="-180,-90,180,90",
                             WIDTH=360, HEIGHT=180, BGCOLOR="0x000000"))
    assert black.mode == "RGB" and black.getpixel((10, 10)) == (0, 0, 0)
    jpeg = image_of(get_map(client, LAYERS="atlas", CRS="CRS:84", BBOX="-180,-90,180,90",
                            WIDTH=360, HEIGHT=180, FORMAT="image/jpeg"))
    assert jpeg.format == "JPEG" and sum(jpeg.getpixel((10, 10))) > 740


def test_vendor_filters(client, dataset):
    bbox = (-180, -90, 180, 90)

    def spots(**params):
        image = image_of(get_map(client, LAYERS="0", CRS="CRS:84", BBOX="-180,-90,180,90",
                                 WIDTH=360, HEIGHT=180, **params)).convert("RGB")
        return [is_blue(image.getpixel(pixel_of(*s, bbox, 360, 180)))
                for s in (SPOT_A, SPOT_B, SPOT_C)]

    assert spots(WHERE="kind = 'red'") == [True, False, False]
    assert spots(CQL_FILTER="value > 10") == [False, True, False]
    assert spots(TIME="2024-01-01T00:00:00Z/2024-12-31T00:00:00Z") == [True, True, False]
    assert spots(TIME="2025-01-01T00:00:00Z") == [False, False, True]
