"""TopoJSON decoding: quantized and plain arcs, reversed arcs, every geometry type."""

from __future__ import annotations

import pytest

from providers.github.topojson import TopologyError, topology_layers


def decode(objects, arcs, transform=None):
    document = {"type": "Topology", "objects": objects, "arcs": arcs}
    if transform:
        document["transform"] = transform
    return topology_layers(document)


def test_plain_arcs_are_absolute_and_shared_points_dropped():
    [(name, fc)] = decode({"line": {"type": "LineString", "arcs": [0, 1]}},
                          [[[0, 0], [1, 1]], [[1, 1], [2, 0]]])
    assert name == "line"
    assert fc["features"][0]["geometry"] == {"type": "LineString",
                                             "coordinates": [[0, 0], [1, 1], [2, 0]]}


def test_quantized_arcs_are_delta_decoded_and_reversed():
    transform = {"scale": [2, 3], "translate": [10, 20]}
    [(_, fc)] = decode({"l": {"type": "MultiLineString", "arcs": [[0], [~0]]}},
                       [[[1, 1], [1, 0], [0, 2]]], transform)
    forward, backward = fc["features"][0]["geometry"]["coordinates"]
    assert forward == [[12, 23], [14, 23], [14, 29]]
    assert backward == forward[::-1]


def test_points_are_quantized_not_delta_encoded():
    transform = {"scale": [0.5, 0.5], "translate": [1, 1]}
    [(_, fc)] = decode({"p": {"type": "GeometryCollection", "geometries": [
        {"type": "Point", "coordinates": [4, 4], "id": "a", "properties": {"k": 1}},
        {"type": "MultiPoint", "coordinates": [[0, 0], [2, 2]]},
        {"type": None, "properties": {"k": 3}},
    ]}}, [], transform)
    a, multi, empty = fc["features"]
    assert a == {"type": "Feature", "id": "a", "properties": {"k": 1},
                 "geometry": {"type": "Point", "coordinates": [3.0, 3.0]}}
    assert multi["geometry"]["coordinates"] == [[1, 1], [2, 2]]
    assert empty["geometry"] is None and empty["properties"] == {"k": 3}


def test_polygons_and_nested_collections():
    arcs = [[[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]], [[1, 1], [1, 2], [2, 2], [1, 1]]]
    [(_, fc)] = decode({"g": {"type": "GeometryCollection", "geometries": [
        {"type": "Polygon", "arcs": [[0], [1]]},
        {"type": "GeometryCollection", "geometries": [
            {"type": "MultiPolygon", "arcs": [[[0]], [[~1]]]}]},
    ]}}, arcs)
    polygon, multi = fc["features"]
    assert len(polygon["geometry"]["coordinates"]) == 2
    assert multi["geometry"]["coordinates"][1][0] == arcs[1][::-1]


@pytest.mark.parametrize(("document", "words"), [
    ({"type": "Topology", "objects": {}, "arcs": []}, "no objects"),
    ({"type": "Topology", "objects": {"x": {"type": "LineString", "arcs": [3]}}, "arcs": []},
     "out of range"),
    ({"type": "Topology", "objects": {"x": {"type": "Blob"}}, "arcs": []}, "unknown"),
    ({"type": "Topology", "objects": {"x": {"type": "Point"}}, "arcs": [],
      "transform": {"scale": 1}}, "transform"),
])
def test_broken_topologies_say_why(document, words):
    with pytest.raises(TopologyError, match=words):
        topology_layers(document)
