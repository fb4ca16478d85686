"""Real WMS clients against a live server: GDAL's WMS driver (Debian's gdal-bin) and OWSLib."""

from __future__ import annotations

import io
import subprocess

import numpy as np
import pytest
from owslib.wms import WebMapService
from PIL import Image

from tests.outputs.wms.conftest import PARK, POND, ROAD_Y, SPOT_A, SPOT_B, atlas, pixel_of

pytestmark = pytest.mark.slow
ENV = {"GDAL_HTTP_TIMEOUT": "60", "CPL_DEBUG": "OFF", "PATH": "/usr/bin:/bin",
       "GDAL_HTTP_UNSAFESSL": "NO"}
WORLD = (-180.0, -90.0, 180.0, 90.0)


@pytest.fixture
def service(transactional_db, make_dataset, live_server) -> str:
    make_dataset("geojson", "atlas", atlas())
    return f"{live_server.url}/geojson/atlas/WMSServer"


def run(*command: str) -> str:
    done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=120,
                          env=ENV)
    return done.stdout


def is_drawn(rgb) -> bool:
    r, g, b = (int(c) for c in rgb[:3])
    return b > 150 and b - r > 40


def test_gdal_lists_the_layers_and_draws_a_map(service, tmp_path):
    listing = run("gdalinfo", f"WMS:{service}?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetCapabilities")
    for name in ("LAYERS=0", "LAYERS=1", "LAYERS=2", "LAYERS=atlas"):
        assert name in listing, listing
    assert "Spots" in listing and "Parks" in listing
    # One layer's map, as GDAL reads it: latitude-first EPSG:4326 box, geotransform in lon/lat.
    source = (f"WMS:{service}?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=atlas"
              "&CRS=EPSG:4326&BBOX=-90,-180,90,180&FORMAT=image/png")
    info = run("gdalinfo", source)
    assert "Origin = (-180.0" in info
    assert "GEOGCRS" in info or 'AUTHORITY["EPSG","4326"]' in info
    target = tmp_path / "map.png"
    run("gdal_translate", "-of", "PNG", "-outsize", "720", "360", source, str(target))
    image = np.asarray(Image.open(target).convert("RGB"))
    assert image.shape == (360, 720, 3)
    for spot in (SPOT_A, SPOT_B, (0, ROAD_Y), (PARK[0] + 5, -40)):
        column, row = pixel_of(*spot, WORLD, 720, 360)
        assert is_drawn(image[row, column]), spot
    column, row = pixel_of((POND[0] + POND[2]) / 2, -40, WORLD, 720, 360)
    assert tuple(image[row, column]) == (255, 255, 255)
    assert tuple(image[10, 10]) == (255, 255, 255)


def test_owslib_reads_capabilities_maps_and_feature_info(service):
    client = WebMapService(service, version="1.3.0", timeout=60)
    assert client.identification.title == "atlas"
    assert {"0", "1", "2", "atlas"} <= set(client.contents)
    spots = client["0"]
    assert spots.title == "Spots"
    assert {"EPSG:4326", "CRS:84", "EPSG:3857"} <= set(spots.crsOptions)
    assert [round(v) for v in spots.boundingBoxWGS84] == [-30, -10, 100, 60]
    assert "default" in spots.styles
    assert "image/png" in client.getOperationByName("GetMap").formatOptions
    answer = client.getmap(layers=["atlas"], styles=[""], srs="CRS:84", bbox=WORLD,
                           size=(720, 360), format="image/png", transparent=True)
    image = Image.open(io.BytesIO(answer.read()))
    assert image.mode == "RGBA"
    assert image.getpixel(pixel_of(*SPOT_A, WORLD, 720, 360))[3] > 0
    assert image.getpixel((10, 10))[3] == 0
    i, j = pixel_of(*SPOT_B, WORLD, 720, 360)
    found = client.getfeatureinfo(layers=["atlas"], styles=[""], srs="CRS:84", bbox=WORLD,
                                  size=(720, 360), format="image/png", query_layers=["0"],
                                  info_format="text/plain", xy=(i, j))
    text = found.read().decode()
    assert "name = b" in text and "kind = blue" in text
