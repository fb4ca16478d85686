"""The generated layers the client tests check answers against are what they claim to be."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
import shapely

from tests.clients.generated import NAMES, generate


@pytest.mark.parametrize("kind", ["points", "lines", "polygons"])
def test_the_document_holds_the_arrays(kind):
    data = generate(kind, 500, size=2.0)
    document = orjson.loads(data.document())
    features = document["features"]
    assert len(features) == len(data) == 500
    assert [f["properties"]["rank"] for f in features] == list(range(500))
    assert {f["properties"]["name"] for f in features} == set(NAMES)
    for i in (0, 123, 499):
        assert features[i]["geometry"] == data.geometry(i)
        assert features[i]["properties"]["value"] == data.value[i]
    geometries = shapely.from_geojson([orjson.dumps(f["geometry"]) for f in features])
    assert shapely.is_valid(geometries).all()
    np.testing.assert_array_equal(shapely.bounds(geometries), data.bounds)
    if kind == "polygons":  # RFC 7946: exterior rings counter-clockwise
        assert shapely.is_ccw(shapely.get_exterior_ring(geometries)).all()


def test_answers_are_computed_from_the_arrays():
    data = generate("points", 1000)
    chosen = data.where("gamma", 50)
    assert chosen.sum() == sum(1 for i in range(1000)
                               if data.name[i] == "gamma" and data.value[i] > 50)
    stats = data.statistics(data.where(value_above=50))
    assert sum(s["count"] for s in stats.values()) == (data.value > 50).sum()
    assert stats["gamma"]["sum"] == pytest.approx(data.value[chosen].sum())
    assert data.extent(chosen) == (data.vertices[chosen, 0, 0].min(),
                                   data.vertices[chosen, 0, 1].min(),
                                   data.vertices[chosen, 0, 0].max(),
                                   data.vertices[chosen, 0, 1].max())
    assert data.within((-180, -90, 180, 90)).all()
    lines = generate("lines", 1000, size=3.0)
    box = (-40.0, -20.0, 0.0, 10.0)
    assert lines.within(box).tolist() == [
        box[0] <= x0 and box[1] <= y0 and x1 <= box[2] and y1 <= box[3]
        for x0, y0, x1, y1 in lines.bounds.tolist()]
