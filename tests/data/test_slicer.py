"""Finding the features array of a FeatureCollection file without parsing the file."""

from __future__ import annotations

import os

import orjson
import pytest

from koop_app.data import slicer
from koop_app.errors import SourceFormatError

FEATURES = [
    {"type": "Feature", "properties": {"s": 'a "quoted" ] } [ {', "t": "back\\slash\\"},
     "geometry": {"type": "Point", "coordinates": [1, 2]}},
    {"type": "Feature", "properties": {"nested": [[1, [2]], {"k": ["]"]}]},
     "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}},
]


def sliced(tmp_path, text: bytes) -> tuple[slicer.Slice | None, bytes]:
    path = tmp_path / "doc.geojson"
    path.write_bytes(text)
    found = slicer.find_features(path)
    if found is None:
        return None, b""
    return found, text[found.start:found.end]


def check(tmp_path, text: bytes, members: dict) -> None:
    found, array = sliced(tmp_path, text)
    assert found is not None
    assert orjson.loads(array) == FEATURES
    assert found.members == members
    # The scanner, without the guess, finds the same end.
    fd = os.open(tmp_path / "doc.geojson", os.O_RDONLY)
    try:
        assert slicer.value_end(fd, found.start, chunk=7) == found.end
    finally:
        os.close(fd)


ARRAY = orjson.dumps(FEATURES)


@pytest.mark.parametrize("layout", ["first", "last", "middle"])
def test_features_anywhere_among_the_members(tmp_path, layout):
    meta = b'"metadata": {"name": "x ] y", "fields": [{"name": "a"}]}'
    bbox = b'"bbox": [0, 0, 1, 1]'
    kind = b'"type": "FeatureCollection"'
    feats = b'"features": ' + ARRAY
    order = {"first": [feats, kind, meta, bbox], "last": [kind, meta, bbox, feats],
             "middle": [kind, meta, feats, bbox]}[layout]
    check(tmp_path, b"{" + b", ".join(order) + b"}",
          {"type": "FeatureCollection", "metadata": {"name": "x ] y", "fields": [{"name": "a"}]},
           "bbox": [0, 0, 1, 1]})


def test_whitespace_bom_and_pretty_printing(tmp_path):
    pretty = orjson.dumps({"type": "FeatureCollection", "features": FEATURES,
                           "crs": {"type": "name"}}, option=orjson.OPT_INDENT_2)
    check(tmp_path, slicer.BOM + b"\n\t " + pretty + b"\n\n",
          {"type": "FeatureCollection", "crs": {"type": "name"}})


def test_escaped_quotes_and_brackets_across_chunk_edges(tmp_path):
    text = b'{"type":"FeatureCollection","features":' + ARRAY + b',"x":"]\\\\"}'
    for chunk in range(1, 12):
        path = tmp_path / "doc.geojson"
        path.write_bytes(text)
        fd = os.open(path, os.O_RDONLY)
        try:
            start = text.index(b"[")
            assert slicer.value_end(fd, start, chunk=chunk) == start + len(ARRAY)
        finally:
            os.close(fd)


def test_empty_collection(tmp_path):
    found, array = sliced(tmp_path, b'{"type": "FeatureCollection", "features": []}')
    assert array == b"[]" and found.members == {"type": "FeatureCollection"}


@pytest.mark.parametrize("text", [
    b'{"type": "Feature", "properties": {}, "geometry": null}',
    b'{"layers": [{"type": "FeatureCollection", "features": []}]}',
    b'{"type": "FeatureCollection", "features": [], "tables": []}',
    b'{"type": "FeatureCollection"}',
    b'{"type": "Topology", "features": []}',
    b'{"type": "FeatureCollection", "features": {"a": 1}}',
    b"[1, 2]",
], ids=["feature", "layers", "tables", "no-features", "not-a-collection", "features-object",
        "array"])
def test_documents_that_are_not_plain_collections_are_left_to_the_whole_parse(tmp_path, text):
    assert sliced(tmp_path, text)[0] is None


@pytest.mark.parametrize("text", [
    b"",
    b"   ",
    b"nonsense",
    b'{"type": "FeatureCollection", "features": [{"a": 1}',
    b'{"type": "FeatureCollection", "features": [{"a": "unterminated]}',
    b'{"type": "FeatureCollection", "features": []',
    b'{"type": "FeatureCollection", "features": [], "bbox": [1, 2}',
    b'{"type" "FeatureCollection", "features": []}',
    b'{type: "FeatureCollection", "features": []}',
    b'{"type": "Feature',
], ids=["empty", "blank", "nonsense", "truncated", "unterminated-string", "unclosed-object",
        "broken-tail", "no-colon", "bare-name", "truncated-name"])
def test_truncated_or_invalid_files_are_a_source_format_error(tmp_path, text):
    with pytest.raises(SourceFormatError):
        found, _ = sliced(tmp_path, text)
        # A guessed end is confirmed by DuckDB's parse; when it is not, the scanner decides.
        assert found is not None and found.guessed
        fd = os.open(tmp_path / "doc.geojson", os.O_RDONLY)
        try:
            slicer.value_end(fd, found.start)
        finally:
            os.close(fd)


def test_copy_range(tmp_path):
    source = tmp_path / "a"
    source.write_bytes(b"0123456789")
    slicer.copy_range(source, 2, 7, tmp_path / "b")
    assert (tmp_path / "b").read_bytes() == b"23456"
