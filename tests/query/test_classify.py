"""Class breaks (Jenks, equal interval, quantile, standard deviation) and unique values."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from koop_app.query.classify import jenks
from tests.conftest import collection, feature, point

URL = "/geojson/rest/services/vals/FeatureServer/0/generateRenderer"
VALUES = [1, 2, 3, 10, 11, 12, 50, 51, 52, 53]


@pytest.fixture
def vals(make_dataset):
    make_dataset("geojson", "vals", collection([
        feature({"v": v, "kind": "low" if v < 20 else "high", "tag": "a" if v % 2 else "b"},
                point(v, 0)) for v in VALUES]))


def generate(client, definition: dict, **params) -> dict:
    response = client.get(URL, {"classificationDef": orjson.dumps(definition).decode(),
                                **params})
    return orjson.loads(response.content)


def test_jenks_finds_the_natural_groups():
    assert jenks(np.array(VALUES, dtype=float), 3) == [3.0, 12.0, 53.0]
    assert jenks(np.array([5.0, 5.0]), 4) == [5.0, 5.0]


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "breaks"), [
    ("esriClassifyNaturalBreaks", [3, 12, 53]),
    ("esriClassifyEqualInterval", [18.333333, 35.666667, 53]),
    ("esriClassifyQuantile", [10, 50, 53]),  # equal counts: 4, 3 and 3 values
])
def test_class_breaks(client, vals, method, breaks):
    body = generate(client, {"type": "classBreaksDef", "classificationField": "v",
                             "classificationMethod": method, "breakCount": 3})
    assert body["type"] == "classBreaks" and body["field"] == "v"
    assert body["minValue"] == 1
    assert [i["classMaxValue"] for i in body["classBreakInfos"]] == pytest.approx(breaks)
    assert body["classBreakInfos"][0]["label"].startswith("1 - ")
    colors = [i["symbol"]["color"] for i in body["classBreakInfos"]]
    assert colors[0] != colors[-1]
    assert body["classBreakInfos"][0]["symbol"]["type"] == "esriSMS"


@pytest.mark.django_db
def test_standard_deviation_breaks_surround_the_mean(client, vals):
    body = generate(client, {"type": "classBreaksDef", "classificationField": "v",
                             "classificationMethod": "esriClassifyStandardDeviation",
                             "standardDeviationInterval": 1})
    edges = [i["classMaxValue"] for i in body["classBreakInfos"]]
    mean, sd = float(np.mean(VALUES)), float(np.std(VALUES, ddof=1))
    assert edges[-1] == 53
    assert any(abs(e - (mean + sd)) < 1e-6 or abs(e - mean) < 1e-6 for e in edges)


@pytest.mark.django_db
def test_where_and_ramp_and_base_symbol(client, vals):
    body = generate(client, {"type": "classBreaksDef", "classificationField": "v",
                             "classificationMethod": "esriClassifyEqualInterval",
                             "breakCount": 2,
                             "baseSymbol": {"type": "esriSMS", "style": "esriSMSSquare",
                                            "size": 9},
                             "colorRamp": {"type": "algorithmic", "fromColor": [0, 0, 0, 255],
                                           "toColor": [200, 100, 0, 255]}},
                    where="v < 20")
    infos = body["classBreakInfos"]
    assert body["minValue"] == 1 and infos[-1]["classMaxValue"] == 12
    assert [i["symbol"]["color"] for i in infos] == [[0, 0, 0, 255], [200, 100, 0, 255]]
    assert infos[0]["symbol"]["style"] == "esriSMSSquare"


@pytest.mark.django_db
def test_unique_values(client, vals):
    body = generate(client, {"type": "uniqueValueDef", "uniqueValueFields": ["kind", "tag"],
                             "fieldDelimiter": "|"})
    assert body.get("type") == "uniqueValue", body
    assert (body["field1"], body["field2"], body["field3"]) == ("kind", "tag", None)
    values = {i["value"]: i["count"] for i in body["uniqueValueInfos"]}
    assert values == {"low|a": 3, "low|b": 3, "high|a": 2, "high|b": 2}


@pytest.mark.django_db
@pytest.mark.parametrize("definition", [
    None, "{", {"type": "pieChartDef"},
    {"type": "classBreaksDef", "classificationField": "kind"},
    {"type": "classBreaksDef", "classificationField": "v", "breakCount": 0},
    {"type": "classBreaksDef", "classificationField": "v", "classificationMethod": "magic"},
    {"type": "uniqueValueDef", "uniqueValueFields": ["nope"]},
    {"type": "uniqueValueDef", "uniqueValueFields": []},
])
def test_bad_definitions(client, vals, definition):
    params = {}
    if definition is not None:
        params["classificationDef"] = definition if isinstance(definition, str) else \
            orjson.dumps(definition).decode()
    body = orjson.loads(client.get(URL, params).content)
    assert body["error"]["code"] == 400
    assert "classificationDef" in " ".join(body["error"]["details"])
