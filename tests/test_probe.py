"""Checking a source before saving: what a refresh would find, from files and a loopback API."""

from __future__ import annotations

import orjson
import pytest

from koop_app import data
from koop_app.models import Dataset, Provider
from koop_app.probe import CheckFailed, location_of, probe
from tests.conftest import collection, feature, point, write_json


@pytest.fixture
def rows(db):
    return {p.name: p for p in Provider.sync_from_registry()}


def unsaved(rows, provider: str, options: dict, **fields) -> Dataset:
    return Dataset(provider=rows[provider], dataset_id="probe", options=options, **fields)


def test_geojson_file(rows, data_dir):
    write_json(data_dir / "parks.geojson", collection([
        feature({"name": f"park {i}", "area": i * 1.5, "opened": f"2020-01-0{i + 1}"},
                point(i, i)) for i in range(7)]))
    found = probe(unsaved(rows, "geojson", {"source": "parks.geojson"}))
    assert (found.count, found.geometry_type, found.location) == (7, "Point", "parks.geojson")
    types = {f.name: f.type for f in found.fields}
    assert types["name"] == "String" and types["area"] == "Double"
    assert types["opened"] == "Date" and types[found.object_id_field] == "OID"
    assert [row["name"] for row in found.rows] == [f"park {i}" for i in range(5)]
    assert found.rows[1]["opened"] == "2020-01-02T00:00:00Z"
    assert found.summary == "7 features, Point geometry, 3 fields"
    assert not Dataset.objects.exists()  # nothing saved, nothing refreshed


def test_csv_file_with_overrides(rows, data_dir):
    (data_dir / "st.csv").write_text("code;y;x;depth\nA;1.5;2.5;10\nB;3;4;20\nC;5;6;\n")
    found = probe(unsaved(rows, "csv", {"source": "st.csv", "latitude": "y", "longitude": "x"},
                          fields_override={"depth": {"type": "Double", "alias": "Depth (m)"}}))
    assert (found.count, found.geometry_type) == (3, "Point")
    by_name = {f.name: f for f in found.fields}
    assert by_name["code"].type == "String"
    assert (by_name["depth"].type, by_name["depth"].alias) == ("Double", "Depth (m)")
    assert [(r["code"], r["depth"]) for r in found.rows] == [("A", "10.0"), ("B", "20.0"),
                                                              ("C", "")]


def test_missing_file_names_the_path(rows, data_dir):
    with pytest.raises(CheckFailed) as error:
        probe(unsaved(rows, "geojson", {"source": "nope/parks.geojson"}))
    assert "'nope/parks.geojson' does not exist" in error.value.message
    assert str(data_dir / "nope" / "parks.geojson") in error.value.message


def test_bad_content_names_the_url(rows, source_server):
    url = source_server.route("/probe-bad.geojson", body=b"{not json")
    with pytest.raises(CheckFailed) as error:
        probe(unsaved(rows, "geojson", {"source": url}))
    assert error.value.message.startswith(f"Reading {url} failed:")
    assert "not valid JSON" in error.value.message


def test_invalid_options_are_reported(rows):
    with pytest.raises(CheckFailed, match="source: this option is required"):
        probe(unsaved(rows, "geojson", {}))


def test_the_checked_copy_is_stored_as_the_first_refresh(rows, data_dir):
    write_json(data_dir / "once.geojson", collection([feature({"a": 1}, point(0, 0))]))
    dataset = unsaved(rows, "geojson", {"source": "once.geojson"})
    found = probe(dataset)
    (data_dir / "once.geojson").unlink()  # a second fetch would fail
    dataset.save()
    layers = data.refresh(dataset, trigger="admin", built=found.copy)
    dataset.refresh_from_db()
    assert (layers.count, dataset.feature_count, dataset.version) == (1, 1,
                                                                      found.copy.pointer.version)


def test_pass_through_asks_one_small_query(rows, source_server):
    asked = []

    def api(query):
        asked.append(query)
        records = [{"id": i, "lat": 40.0, "lon": -100.0 + i, "kind": "k"} for i in range(50)]
        start, size = int(query.get("offset", 0)), int(query.get("limit", 500))
        return orjson.dumps({"records": records[start:start + size], "total": 50})

    url = source_server.route("/probe-records", body=api)
    dataset = unsaved(rows, "records", {"url": url})
    assert location_of(dataset) == url
    found = probe(dataset, rows=3)
    assert [q["limit"] for q in asked] == ["3"]
    assert found.pass_through and found.count == 3 and found.more
    assert found.summary.startswith("at least 3 features in a sample query")
    assert found.copy is None
