"""The streaming GeoJSON path (DuckDB) types and shapes data exactly as normalize does."""

from __future__ import annotations

import logging

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pytest
import shapely

from koop_app.data import ingest, slicer
from koop_app.data.arrowio import read_ipc
from koop_app.data.normalize import GEOMETRY_COLUMN, Overrides
from koop_app.errors import SourceFormatError, SourceTooLargeError
from tests.conftest import collection, feature, point
from tests.data.test_normalize import FAST_PATH_DOCS

pytestmark = pytest.mark.django_db

SQUARE_CW = {"type": "Polygon", "coordinates": [[[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]]]}
SQUARE_CCW = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
LINE = {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}

DOCS = {
    "typed": FAST_PATH_DOCS["typed"],
    "mixed": collection([
        feature({"a": 1, "b": 1, "c": None, "d": "2020-01-01", "e": True, "f": 1, "g": 5}),
        feature({"a": 2, "b": 2.5, "c": "x", "d": "2021-06-30T12:00:00Z", "e": False,
                 "f": "one", "g": 2**40}),
        feature({"a": None, "b": None, "c": None, "d": None, "e": None, "f": None,
                 "h": {"nested": [1]}, "k": [1, "a"]}),
        feature({"f": True, "h": "text", "k": 2.5, "m": {"a": 1, "b": [True, None]}}),
    ]),
    "dates": collection([feature({"d": "2024-01-02"}), feature({"d": "2024-01-02T03:04:05Z"}),
                         feature({"d": "2024-01-02T05:00:00+01:00"}),
                         feature({"d": "2024-01-02 03:04"})]),
    "declared": collection(
        [feature({"when": 1700000000000, "code": "7", "flag": "yes", "n": "2.5"}),
         feature({"when": "2024-02-03", "code": "x", "flag": "no", "n": True}),
         feature({"when": "nope", "code": 3.0, "flag": 1, "n": "abc"})],
        metadata={"fields": [{"name": "when", "type": "Date"},
                             {"name": "flag", "type": "Boolean"},
                             {"name": "n", "type": "Double", "alias": "Number"}],
                  "name": "Declared", "displayField": "CODE"}),
    "names": collection([feature({"Name": "a", "name": "b", "_koop_geom": 1, "objectid": "x",
                                  "quote\"d": 1, "sla/sh~": 2})]),
    "feature-ids": collection([
        feature({"a": 1}, point(0, 0), id="x"), feature({"a": 1}, point(0, 0)),
        feature({"a": 1}, point(0, 0)), feature({"a": 2}, point(0, 0), id=7)]),
    "id-field": collection([feature({"fid": 10, "v": 1}), feature({"fid": 3, "v": 2})],
                           metadata={"idField": "fid"}),
    "bad-id-field": collection([feature({"fid": 1}), feature({"fid": 1}), feature({})],
                               metadata={"idField": "fid"}),
    "objectid": collection([feature({"OBJECTID": 5}), feature({"OBJECTID": 9})]),
    "polygons": collection([feature({"n": 1}, SQUARE_CW), feature({"n": 2}, SQUARE_CCW),
                            feature({"n": 3}, None), feature({"n": 4}, point(0, 0))]),
    "multipoints": collection([feature({}, point(0, 0)),
                               feature({}, {"type": "MultiPoint",
                                            "coordinates": [[0, 0], [1, 1]]})]),
    "bad-geometry": collection([
        feature({"n": 1}, point(1.5, 2.5)), feature({"n": 2}, None),
        feature({"n": 3}, {"type": "Point", "coordinates": [3, 4, 99]}),
        feature({"n": 4}, {"type": "Point", "coordinates": ["a", "b"]}),
        feature({"n": 5}, LINE)]),
    "collections-only": collection([feature({}, {"type": "GeometryCollection",
                                                 "geometries": [point(0, 0)]})]),
    "no-properties": collection([{"type": "Feature", "geometry": point(1, 1)},
                                 {"type": "Feature", "properties": None, "geometry": None}]),
    "empty": collection([]),
    "enums": collection([feature({"kind": ["a", "b", "c"][i % 3], "label": f"x{i}"},
                                 point(i % 90, 0)) for i in range(10_000)]),
}


def both(tmp_path, doc, overrides=None):
    """(dict path layer, stream path layer) of ``doc``, each with a fresh id map."""
    whole = ingest.from_collection(doc, key="dict", label="t", overrides=overrides)
    path = tmp_path / "doc.geojson"
    path.write_bytes(orjson.dumps(doc))
    found = slicer.find_features(path)
    streamed = ingest._stream_geojson(path, found, key="stream", label="t",
                                      overrides=overrides, report=lambda *a: None)
    return whole.layers[0], streamed.layers[0]


@pytest.mark.parametrize("name", sorted(DOCS))
def test_stream_and_dict_paths_agree(tmp_path, name):
    whole, streamed = both(tmp_path, DOCS[name])
    assert streamed.schema == whole.schema
    assert streamed.count == whole.count
    assert read_ipc(streamed.blob).equals(read_ipc(whole.blob))


def test_overrides_apply_on_the_stream_path(tmp_path):
    overrides = Overrides(name="N", id_field="code", geometry_type="esriGeometryPolyline",
                          fields={"v": {"type": "String", "alias": "V"}}, display_field="v")
    doc = collection([feature({"code": 5, "v": 1}, point(0, 0)),
                      feature({"code": 6, "v": 2.5}, LINE)])
    whole, streamed = both(tmp_path, doc, overrides)
    assert streamed.schema == whole.schema
    assert streamed.schema.object_id_field == "code"
    assert read_ipc(streamed.blob).equals(read_ipc(whole.blob))


def test_polygons_are_wound_per_rfc7946_with_warnings(tmp_path, caplog, settings):
    caplog.set_level(logging.WARNING)
    settings.KOOP = {**settings.KOOP, "VALIDATE_GEOJSON": True}
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    _, streamed = both(tmp_path, collection([feature({}, SQUARE_CW), feature({}, bowtie),
                                             feature({}, point(0, 0))]))
    geom = shapely.from_wkb(read_ipc(streamed.blob)[GEOMETRY_COLUMN][0].as_py())
    assert shapely.is_ccw(geom.exterior)
    assert "t: mixed geometry types" in caplog.text
    assert "invalid geometr" in caplog.text
    assert "right-hand rule" in caplog.text


def test_members_after_the_features_are_read(tmp_path):
    doc = collection([feature({"a": 1}, point(0, 0))], ttl=30,
                     metadata={"name": "late", "description": "after"})
    text = b'{"features":' + orjson.dumps(doc["features"]) + b',"type":"FeatureCollection",' \
        + b'"ttl":30,"metadata":{"name":"late","description":"after"}}'
    path = tmp_path / "doc.geojson"
    path.write_bytes(text)
    result = ingest._stream_geojson(path, slicer.find_features(path), key="k", label="t",
                                    overrides=None, report=lambda *a: None)
    assert result.ttl == 30
    assert result.layers[0].schema.metadata["name"] == "late"


def test_a_wrong_guess_of_the_end_is_corrected_by_the_scanner(tmp_path):
    # A "]" inside a string in the last member makes the fast guess wrong.
    text = (b'{"type":"FeatureCollection","features":' + orjson.dumps(DOCS["typed"]["features"])
            + b',"metadata":{"name":"x"},"bbox":[0,0,1,1],"note":"],\\"a\\":1}"}')
    path = tmp_path / "doc.geojson"
    path.write_bytes(text)
    found = slicer.find_features(path)
    result = ingest._stream_geojson(path, found, key="k", label="t", overrides=None,
                                    report=lambda *a: None)
    assert result.layers[0].count == 20


@pytest.mark.parametrize("features", [b"[1, 2]", b'[{"type": "Feature"}, "x"]',
                                      b'[{"type": "Feature", "properties": {"a": }]'])
def test_broken_features_are_a_source_format_error(tmp_path, features):
    path = tmp_path / "doc.geojson"
    path.write_bytes(b'{"type":"FeatureCollection","features":' + features + b"}")
    with pytest.raises(SourceFormatError):
        found = slicer.find_features(path)
        ingest._stream_geojson(path, found, key="k", label="t", overrides=None,
                               report=lambda *a: None)


def test_progress_is_reported_by_phase(tmp_path, make_dataset, monkeypatch):
    monkeypatch.setattr(ingest, "STREAM_MIN_BYTES", 0)
    monkeypatch.setattr(ingest, "PROGRESS_INTERVAL", 0)
    dataset = make_dataset("geojson", "p", DOCS["typed"])
    from koop_app import data

    seen = []
    plugin = dataset.provider.plugin
    request = data.provider_request(dataset)
    result = ingest.read_layers(plugin, request, key="k", label="t",
                           progress=lambda *args: seen.append(args))
    assert result.streamed and result.layers[0].count == 20
    phases = [s[0] for s in seen]
    assert phases[0] == "fetch" and "read" in phases and phases[-1] == "store"
    assert seen[-1][3] == 20


@pytest.mark.parametrize("kind", ["geojson", "csv"])
def test_streamed_datasets_are_served(client, make_dataset, monkeypatch, kind):
    monkeypatch.setattr(ingest, "STREAM_MIN_BYTES", 0)
    if kind == "csv":
        make_dataset("csv", "s", "name,lat,lon,when\nA,1,2,2024-01-02\nB,3,4,\n", suffix=".csv")
    else:
        make_dataset("geojson", "s", collection([
            feature({"name": "A", "when": "2024-01-02"}, point(2, 1)),
            feature({"name": "B", "when": None}, point(4, 3))]))
    body = orjson.loads(client.get(f"/{kind}/rest/services/s/FeatureServer/0/query",
                                   {"where": "1=1", "outFields": "name,when",
                                    "orderByFields": "name"}).content)
    assert [f["attributes"] for f in body["features"]] == [
        {"OBJECTID": 1, "name": "A", "when": 1704153600000},
        {"OBJECTID": 2, "name": "B", "when": None}]
    assert body["features"][1]["geometry"] == {"x": 4, "y": 3}


def test_a_local_file_over_the_download_limit_streams_unless_it_must_be_read_whole(
        make_dataset, monkeypatch, settings):
    monkeypatch.setattr(ingest, "STREAM_MIN_BYTES", 0)
    settings.KOOP = {**settings.KOOP, "MAX_DOWNLOAD_BYTES": 64}  # both files are larger
    from koop_app import data

    streamed = make_dataset("geojson", "big", DOCS["typed"])
    result = ingest.read_layers(streamed.provider.plugin, data.provider_request(streamed),
                                key="big", label="big")
    assert result.streamed and result.layers[0].count == 20
    whole = make_dataset("geojson", "layers", {"layers": [DOCS["typed"]]})
    with pytest.raises(SourceTooLargeError):  # a multi-layer document is parsed whole
        ingest.read_layers(whole.provider.plugin, data.provider_request(whole), key="layers",
                           label="layers")


def test_even_batches_cut_the_same_data_the_same_way(tmp_path):
    schema = pa.schema([("n", pa.int64())])

    def written(sizes):
        path = tmp_path / "out.arrows"
        with pa.OSFile(str(path), "wb") as sink:
            writer = ingest.EvenBatches(pa.ipc.new_stream(sink, schema), rows=4)
            start = 0
            for size in sizes:
                writer.write_batch(pa.record_batch([pa.array(range(start, start + size))],
                                                   schema=schema))
                start += size
            writer.close()
        return path.read_bytes()

    first = written([3, 5, 2])
    assert first == written([10]) == written([1] * 10)
    reader = pa.ipc.open_stream(first)
    assert [batch.num_rows for batch in reader] == [4, 4, 2]


def test_values_under_nulls_are_zeroed():
    garbage = pa.py_buffer(np.array([7, 123456, 9], dtype=np.int64).tobytes())
    validity = pa.array([True, False, True]).buffers()[1]
    column = pa.Array.from_buffers(pa.int64(), 3, [validity, garbage], null_count=1)
    clean = ingest._zero_under_nulls(pa.record_batch([column], names=["n"])).column(0)
    assert clean.to_pylist() == [7, None, 9]
    assert np.frombuffer(clean.buffers()[1], dtype=np.int64)[:3].tolist() == [7, 0, 9]


def test_a_streamed_file_refreshed_twice_keeps_its_version(make_dataset, monkeypatch):
    monkeypatch.setattr(ingest, "STREAM_MIN_BYTES", 0)
    from koop_app import data

    dataset = make_dataset("geojson", "same", collection([
        feature({"v": None if i % 3 else i * 1.5, "n": None if i % 2 else i,
                 "flag": None if i % 4 else bool(i % 8)}, point(i, -i)) for i in range(300)]))
    versions = {data.refresh(dataset, keep_hot=False).version for _ in range(3)}
    assert len(versions) == 1


def test_the_read_reports_bytes_while_duckdb_reads(tmp_path, monkeypatch):
    """One DuckDB statement reads the file: its own progress says how far it got."""
    monkeypatch.setattr(ingest, "PROGRESS_INTERVAL", 0.01)
    path = tmp_path / "big.csv"
    # 3,000,000 rows "i,n<i>,<i % 80>,<i % 170>" written by DuckDB: the same bytes as a Python
    # loop writes them, in a quarter of the time.
    duckdb.sql("COPY (SELECT i AS id, 'n' || i AS name, i % 80 AS lat, i % 170 AS lon "
               "FROM range(3000000) t(i) ORDER BY i) "
               f"TO '{path}' (FORMAT csv, HEADER, DELIMITER ',')")
    assert path.read_bytes()[:40].startswith(b"id,name,lat,lon\n0,n0,0,0\n1,n1,1,1\n")
    from koop_app.provider import FileSource

    seen: list[tuple] = []
    ingest._stream_csv(FileSource(path, "csv"), key="k", label="t", overrides=None,
                       report=lambda *args: seen.append(args))
    size = path.stat().st_size
    reads = [args[1] for args in seen if args[0] == "read"]
    between = [done for done in reads if 0 < done < size]
    assert reads[0] == 0 and reads[-1] == size
    assert between, f"no byte count between 0 and {size}: {reads}"
    assert between == sorted(between)
    assert all(args[2] == size for args in seen if args[0] == "read")
