"""Bad requests get a ServiceExceptionReport with the standard's code and HTTP 400; never a
crash. A secured dataset refuses anonymous callers in the same format."""

from __future__ import annotations

import numpy as np
import pytest
from lxml import etree

from tests.outputs.wms.conftest import OGC, exception_of, image_of, wms

pytestmark = pytest.mark.django_db
MAP = {"SERVICE": "WMS", "VERSION": "1.3.0", "REQUEST": "GetMap", "LAYERS": "atlas",
       "STYLES": "", "CRS": "EPSG:4326", "BBOX": "-90,-180,90,180", "WIDTH": "100",
       "HEIGHT": "50", "FORMAT": "image/png"}
INFO = {**MAP, "REQUEST": "GetFeatureInfo", "QUERY_LAYERS": "0", "I": "5", "J": "5"}
CASES = [
    ({"REQUEST": "GetMap", "FORMAT": "image/gif"}, "InvalidFormat", "FORMAT"),
    ({"CRS": "EPSG:999999"}, "InvalidCRS", "CRS"),
    ({"CRS": "AUTO2:42001"}, "InvalidCRS", "CRS"),
    ({"CRS": "EPSG:5703"}, "InvalidCRS", "CRS"),  # a vertical CRS: PROJ knows it, no map
    ({"LAYERS": "nowhere"}, "LayerNotDefined", "LAYERS"),
    ({"LAYERS": "5"}, "LayerNotDefined", "LAYERS"),  # a table has no map
    ({"STYLES": "fancy"}, "StyleNotDefined", "STYLES"),
    ({"STYLES": ",,"}, "InvalidParameterValue", "STYLES"),
    ({"BBOX": "1,2,3"}, "InvalidParameterValue", "BBOX"),
    ({"BBOX": "10,0,0,10"}, "InvalidParameterValue", "BBOX"),
    ({"BBOX": "nan,0,1,1"}, "InvalidParameterValue", "BBOX"),
    ({"BBOX": "0,0,1e300,1e300"}, "InvalidParameterValue", "BBOX"),
    ({"WIDTH": "0"}, "InvalidParameterValue", "WIDTH"),
    ({"HEIGHT": "100000"}, "InvalidParameterValue", "HEIGHT"),
    ({"WIDTH": "-3"}, "InvalidParameterValue", "WIDTH"),
    ({"BGCOLOR": "red"}, "InvalidParameterValue", "BGCOLOR"),
    ({"TRANSPARENT": "maybe"}, "InvalidParameterValue", "TRANSPARENT"),
    ({"BBOX": None}, "MissingParameterValue", "BBOX"),
    ({"CRS": None}, "MissingParameterValue", "CRS"),
    ({"LAYERS": None}, "MissingParameterValue", "LAYERS"),
    ({"FORMAT": None}, "MissingParameterValue", "FORMAT"),
    ({"REQUEST": None}, "MissingParameterValue", "REQUEST"),
    ({"REQUEST": "GetStyles"}, "OperationNotSupported", "REQUEST"),
    ({"SERVICE": "WFS"}, "InvalidParameterValue", "SERVICE"),
    ({"WHERE": "nosuchfield = 1"}, "InvalidParameterValue", "WHERE"),
    ({"CQL_FILTER": "value >"}, "InvalidParameterValue", "CQL_FILTER"),
    ({"TIME": "yesterday"}, "InvalidParameterValue", "TIME"),
    ({"LAYERS": "1", "TIME": "2024-01-01"}, "InvalidParameterValue", "TIME"),
    ({**INFO, "I": "100"}, "InvalidPoint", "I"),
    ({**INFO, "J": "-1"}, "InvalidPoint", "J"),
    ({**INFO, "I": None}, "MissingParameterValue", "I"),
    ({**INFO, "INFO_FORMAT": "image/png"}, "InvalidFormat", "INFO_FORMAT"),
    ({**INFO, "QUERY_LAYERS": "5"}, "LayerNotQueryable", "QUERY_LAYERS"),
    ({**INFO, "QUERY_LAYERS": "nowhere"}, "LayerNotDefined", "QUERY_LAYERS"),
    ({**INFO, "FEATURE_COUNT": "0"}, "InvalidParameterValue", "FEATURE_COUNT"),
]


def test_each_error_has_its_code(client, dataset):
    for change, code, locator in CASES:
        params = {k: v for k, v in {**MAP, **change}.items() if v is not None}
        response = wms(client, **params)
        assert exception_of(response)[0] == code, (change, response.content)
        assert etree.fromstring(response.content).find(
            f"{OGC}ServiceException").get("locator") == locator, change
        assert response["Content-Type"].startswith("text/xml")


def test_version_1_1_1_reports(client, dataset):
    params = {k: v for k, v in MAP.items() if k != "CRS"}
    response = wms(client, **{**params, "VERSION": "1.1.1", "SRS": "EPSG:1"})
    assert response.status_code == 400
    root = etree.fromstring(response.content)
    assert root.tag == "ServiceExceptionReport" and root.get("version") == "1.1.1"
    assert root.find("ServiceException").get("code") == "InvalidSRS"


def test_errors_in_the_image(client, dataset):
    blank = image_of(wms(client, **{**MAP, "LAYERS": "nowhere", "EXCEPTIONS": "BLANK",
                                    "TRANSPARENT": "TRUE"}))
    assert blank.size == (100, 50) and blank.getextrema()[3] == (0, 0)
    written = image_of(wms(client, **{**MAP, "LAYERS": "nowhere", "EXCEPTIONS": "INIMAGE"}))
    pixels = np.asarray(written.convert("RGB")).reshape(-1, 3)
    assert ((pixels[:, 0] > 150) & (pixels[:, 1] < 100)).any()  # red text


def test_unknown_dataset(client, db):
    response = wms(client, SERVICE="WMS", REQUEST="GetCapabilities")
    code, text = exception_of(response, 404)
    assert code is None and "not found" in text.lower()


def test_secured_dataset_refuses_anonymous_callers(client, make_dataset):
    from tests.outputs.wms.conftest import atlas

    make_dataset("geojson", "atlas", atlas(), access="signed-in")
    for params in ({"SERVICE": "WMS", "REQUEST": "GetCapabilities"}, MAP, INFO):
        response = wms(client, **params)
        exception_of(response, 401)
        assert response["WWW-Authenticate"] == "Bearer"
