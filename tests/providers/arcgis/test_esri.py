"""Esri JSON geometries read as GeoJSON."""

from __future__ import annotations

import pytest

from providers.arcgis.esri import field_type, to_geojson

CW = [[0, 0], [0, 10], [10, 10], [10, 0], [0, 0]]  # clockwise: an exterior ring in Esri JSON
HOLE = [[2, 2], [4, 2], [4, 4], [2, 4], [2, 2]]  # counter-clockwise: a hole
FAR = [[20, 0], [20, 5], [25, 5], [25, 0], [20, 0]]


@pytest.mark.parametrize(("esri", "geojson"), [
    ({"x": 1.5, "y": 2}, {"type": "Point", "coordinates": [1.5, 2.0]}),
    ({"x": 1, "y": 2, "z": 9, "m": 3}, {"type": "Point", "coordinates": [1.0, 2.0]}),
    ({"x": "NaN", "y": "NaN"}, None),
    ({"x": None, "y": None}, None),
    ({"points": [[1, 2], [3, 4]]}, {"type": "MultiPoint", "coordinates": [[1.0, 2.0],
                                                                         [3.0, 4.0]]}),
    ({"points": []}, None),
    ({"paths": [[[0, 0], [1, 1]]]}, {"type": "LineString", "coordinates": [[0.0, 0.0],
                                                                          [1.0, 1.0]]}),
    ({"paths": [[[0, 0], [1, 1]], [[2, 2], [3, 3]], [[5, 5]]]},
     {"type": "MultiLineString", "coordinates": [[[0.0, 0.0], [1.0, 1.0]],
                                                 [[2.0, 2.0], [3.0, 3.0]]]}),
    ({"rings": [CW, HOLE]}, {"type": "Polygon", "coordinates": [CW, HOLE]}),
    ({"rings": [HOLE, FAR[::-1], CW]},
     {"type": "MultiPolygon", "coordinates": [[CW, HOLE], [FAR[::-1]]]}),
    ({"rings": [CW[:-1]]}, {"type": "Polygon", "coordinates": [CW]}),  # closed for GeoJSON
    ({"rings": [HOLE]}, {"type": "Polygon", "coordinates": [HOLE]}),  # wound wrongly: kept
    ({"rings": [[[0, 0], [1, 1], [0, 0]]]}, None),  # no area
    ({"xmin": 0, "ymin": 1, "xmax": 2, "ymax": 3},
     {"type": "Polygon", "coordinates": [[[0, 1], [2, 1], [2, 3], [0, 3], [0, 1]]]}),
    ({"curvePaths": [[[0, 0], {"c": [[2, 2], [1, 2]]}, [3, 3]]]},
     {"type": "LineString", "coordinates": [[0.0, 0.0], [3.0, 3.0]]}),
    (None, None),
    ({}, None),
])
def test_geometries(esri, geojson):
    assert to_geojson(esri) == geojson


def test_field_types():
    assert field_type("esriFieldTypeOID") == "Integer"
    assert field_type("esriFieldTypeSingle") == "Double"
    assert field_type("esriFieldTypeGlobalID") == "String"
    assert field_type("esriFieldTypeBlob") is None
    assert field_type("esriFieldTypeSomethingNew") == "String"
