"""The CSV provider: coordinates or WKT, sniffing, typed columns, failures."""

from __future__ import annotations

import orjson
import pytest

from koop_app.data import provider_request
from koop_app.errors import OptionsError, SourceConnectError, SourceError, SourceFormatError
from koop_app.registry import registry

CSV = (
    "name,lat,lon,count,score,when,ok,note\n"
    "Alpha,10.5,20.25,3,1.5,2024-01-02,true,\n"
    "Beta,-5,7,4,2,2024-03-04T05:06:07Z,FALSE,hello\n"
    "Gamma,,,5,,2024-05-06,true,x\n"
)


def data_of(dataset):
    return registry.get("csv").get_data(provider_request(dataset))


def types_of(dataset) -> dict[str, str]:
    return {f["name"]: f["type"] for f in data_of(dataset)["metadata"]["fields"]}


@pytest.mark.django_db
class TestCSVProvider:
    def test_lat_lon_columns_found_by_name_and_typed(self, make_dataset):
        dataset = make_dataset("csv", "points", CSV, suffix=".csv")
        result = data_of(dataset)
        geometries = [f["geometry"] for f in result["features"]]
        assert geometries == [{"type": "Point", "coordinates": [20.25, 10.5]},
                              {"type": "Point", "coordinates": [7.0, -5.0]}, None]
        assert types_of(dataset) == {"name": "String", "lat": "Double", "lon": "Double",
                                     "count": "Integer", "score": "Double", "when": "Date",
                                     "ok": "Boolean", "note": "String"}
        first = result["features"][0]["properties"]
        assert first == {"name": "Alpha", "lat": 10.5, "lon": 20.25, "count": 3, "score": 1.5,
                         "when": "2024-01-02", "ok": True, "note": None}

    def test_served_with_types_and_epoch_dates(self, client, make_dataset):
        make_dataset("csv", "points", CSV, suffix=".csv")
        layer = orjson.loads(client.get("/csv/rest/services/points/FeatureServer/0").content)
        types = {f["name"]: f["type"] for f in layer["fields"]}
        assert types["when"] == "esriFieldTypeDate"
        assert types["count"] == "esriFieldTypeInteger"
        assert types["ok"] == "esriFieldTypeSmallInteger"
        body = orjson.loads(client.get(
            "/csv/rest/services/points/FeatureServer/0/query",
            {"where": "ok = 1", "outFields": "name,when"}).content)
        rows = [f["attributes"] for f in body["features"]]
        assert rows == [{"OBJECTID": 1, "name": "Alpha", "when": 1704153600000},
                        {"OBJECTID": 3, "name": "Gamma", "when": 1714953600000}]

    def test_named_columns_semicolons_and_latin1(self, make_dataset, data_dir):
        raw = "Nom;Breite;Länge\nCafé;48,1;11,5\nBar;48.2;11.6\n".encode("cp1252")
        dataset = make_dataset("csv", "latin", raw, suffix=".csv",
                               options={"source": "latin.csv", "latitude": "breite",
                                        "longitude": "Länge"})
        with pytest.raises(SourceFormatError, match="not all numbers"):
            data_of(dataset)  # "48,1" is not a number
        (data_dir / "latin.csv").write_bytes(raw.replace(b"48,1;11,5", b"48.1;11.5"))
        result = data_of(dataset)
        assert result["features"][0]["properties"]["Nom"] == "Café"
        assert result["features"][0]["geometry"]["coordinates"] == [11.5, 48.1]

    def test_tabs_and_bom(self, make_dataset):
        raw = "\ufeffid\tx\ty\n1\t1\t2\n".encode()
        dataset = make_dataset("csv", "tabs", raw, suffix=".csv")
        result = data_of(dataset)
        assert result["features"][0]["properties"] == {"id": 1, "x": 1, "y": 2}
        assert result["features"][0]["geometry"]["coordinates"] == [1.0, 2.0]

    def test_explicit_delimiter_and_encoding(self, make_dataset):
        raw = "name|lat|lon\nÅ|1|2\n".encode("utf-16")
        dataset = make_dataset("csv", "pipes", raw, suffix=".csv",
                               options={"source": "pipes.csv", "delimiter": "|",
                                        "encoding": "utf-16"})
        assert data_of(dataset)["features"][0]["properties"]["name"] == "Å"

    def test_wkt_column(self, make_dataset):
        raw = ('zone,wkt\nA,"POLYGON((0 0, 1 0, 1 1, 0 1, 0 0))"\nB,not wkt\n'
               'C,"LINESTRING(0 0, 1 1)"\n')
        dataset = make_dataset("csv", "zones", raw, suffix=".csv")
        geometries = [f["geometry"] for f in data_of(dataset)["features"]]
        assert geometries[0]["type"] == "Polygon"
        assert geometries[1] is None
        assert geometries[2]["type"] == "LineString"

    def test_out_of_range_coordinates_have_no_geometry(self, make_dataset):
        dataset = make_dataset("csv", "range", "lat,lon\n91,0\n0,181\n1,1\n", suffix=".csv")
        assert [f["geometry"] is None for f in data_of(dataset)["features"]] == [True, True,
                                                                                False]

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            ("", "empty"),
            ("a,b\n1,2\n", "no latitude/longitude"),
            ("lat,lon,lat\n1,2,3\n", "repeats"),
            ("lat,lon\n1,2,3,4\n", "cells"),
            ("lat,lon\nnorth,east\n", "not all numbers"),
        ],
    )
    def test_unreadable_csv(self, make_dataset, raw, message):
        dataset = make_dataset("csv", "bad", raw, suffix=".csv")
        with pytest.raises(SourceFormatError, match=message):
            data_of(dataset)

    def test_missing_named_column(self, make_dataset):
        dataset = make_dataset("csv", "named", CSV, suffix=".csv",
                               options={"source": "named.csv", "latitude": "nope"})
        with pytest.raises(SourceFormatError, match="no latitude column 'nope'"):
            data_of(dataset)

    @pytest.mark.parametrize("options", [{"delimiter": ";;"}, {"encoding": "klingon"},
                                         {"source": ""}, {"wkt": ["x"]}])
    def test_invalid_options(self, options):
        with pytest.raises(OptionsError):
            registry.get("csv").clean_options({"source": "a.csv", **options})

    def test_url_and_remote_failures(self, make_dataset, source_server):
        good = source_server.route("/points.csv", body=CSV.encode(), content_type="text/csv")
        dataset = make_dataset("csv", "remote", options={"source": good})
        assert len(data_of(dataset)["features"]) == 3
        for path, script, error in [
            ("/csv-500", {"status": 500}, SourceError),
            # no status line in time reads "could not connect", like refused (issue 8)
            ("/csv-slow", {"body": CSV.encode(), "delay": 3}, SourceConnectError),
            ("/csv-huge", {"body": b"a,b\n" * 300_000}, SourceError),
            ("/csv-broken", {"body": b"lat,lon\n1,2,3\n"}, SourceFormatError),
        ]:
            url = source_server.route(path, **script)
            broken = make_dataset("csv", path.strip("/"), options={"source": url})
            with pytest.raises(error):
                data_of(broken)
