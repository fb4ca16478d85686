"""An upstream FeatureServer for the arcgis provider: our own server on loopback.

``upstream`` registers a GeoJSON dataset with two layers and a table ("parks") on the live
server, with a small maxRecordCount so that reading it takes several pages, the same data
unrestricted ("parks_ref") to compare whole answers with, and points the arcgis connection
"local" at ``<live server>/geojson/rest/services``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from koop_app.models import Dataset, Provider
from providers.arcgis.source import tokens
from tests.conftest import body_of, collection, feature, point, write_json

SOURCE_PAGE = 40  # the upstream's maxRecordCount
COUNT = 230
KINDS = ["oak", "elm", "pine", "ash"]


def square(x: float, y: float, size: float, hole: bool) -> dict[str, Any]:
    outer = [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]
    rings = [outer]
    if hole:
        q = size / 4
        rings.append([[x + q, y + q], [x + q, y + 3 * q], [x + 3 * q, y + 3 * q],
                      [x + 3 * q, y + q], [x + q, y + q]])
    return {"type": "Polygon", "coordinates": rings}


def parks() -> dict[str, Any]:
    points = [feature({"fid": i, "name": f"park {i:03d}", "rank": i % 17,
                       "score": round(math.sin(i) * 100, 3), "kind": KINDS[i % 4],
                       "opened": f"20{10 + i % 14:02d}-0{1 + i % 9}-1{i % 10}T00:00:00Z"},
                      point(-105 + (i % 23) * 0.1, 39 + (i // 23) * 0.1))
              for i in range(1, COUNT + 1)]
    areas = [feature({"fid": i, "label": f"zone {i}"},
                     {"type": "MultiPolygon", "coordinates": [
                         square(-104 + i, 40, 0.5, hole=True)["coordinates"],
                         square(-104 + i + 0.7, 40, 0.2, hole=False)["coordinates"]]}
                     if i % 3 == 0 else square(-104 + i, 40, 0.5, hole=i % 2 == 0))
             for i in range(1, 13)]
    table = [feature({"fid": i, "park": i * 2, "visits": i * 11}) for i in range(1, 31)]
    return {"layers": [collection(points, metadata={"id": 0, "name": "Parks", "idField": "fid"}),
                       collection(areas, metadata={"id": 1, "name": "Zones", "idField": "fid"})],
            "tables": [collection(table, metadata={"id": 2, "name": "Visits",
                                                   "idField": "fid"})]}


@dataclass
class Upstream:
    url: str  # the live server
    services: str  # .../geojson/rest/services

    def direct(self, client, path: str, params: dict[str, Any], service: str = "parks_ref"
               ) -> dict[str, Any]:
        response = client.get(f"/geojson/rest/services/{service}/FeatureServer{path}", params)
        return orjson.loads(body_of(response))


def proxy(client, path: str, params: dict[str, Any] | None = None, *, service: str = "parks",
          host: str = "local") -> Any:
    response = client.get(f"/arcgis/rest/services/{host}/{service}/FeatureServer{path}",
                          params or {})
    assert response.status_code == 200, response.content
    body = body_of(response)
    return body if (params or {}).get("f") == "pbf" else orjson.loads(body)


def connect(settings, **servers: dict[str, Any]) -> None:
    settings.KOOP = {**settings.KOOP, "CONNECTIONS": {"arcgis": servers}}


def arcgis_dataset(dataset_id: str = "parks", host: str = "local", **fields: Any) -> Dataset:
    row = {p.name: p for p in Provider.sync_from_registry()}["arcgis"]
    dataset = Dataset(provider=row, host=host, dataset_id=dataset_id,
                      options=fields.pop("options", {}), **fields)
    dataset.full_clean()
    dataset.save()
    return dataset


@pytest.fixture
def upstream(transactional_db, make_dataset, live_server, settings, data_dir):
    document = parks()
    write_json(data_dir / "parks.geojson", document)
    make_dataset("geojson", "parks", options={"source": "parks.geojson"},
                 max_record_count=SOURCE_PAGE)
    make_dataset("geojson", "parks_ref", options={"source": "parks.geojson"},
                 max_record_count=2000)
    services = f"{live_server.url}/geojson/rest/services"
    connect(settings, local={"url": services})
    tokens.clear()
    yield Upstream(live_server.url, services)
    tokens.clear()


@pytest.fixture
def sent(monkeypatch) -> list[dict[str, Any]]:
    """Every request the provider sent (url, form fields), passed on to the real client."""
    from urllib.parse import parse_qsl

    from koop_app import net

    calls: list[dict[str, Any]] = []
    real = net.request

    def recording(method: str, url: str, **kwargs: Any) -> Any:
        form = dict(parse_qsl((kwargs.get("body") or b"").decode()))
        calls.append({"method": method, "url": url, "form": form,
                      "headers": dict(kwargs.get("headers") or {})})
        return real(method, url, **kwargs)

    monkeypatch.setattr("providers.arcgis.source.net.request", recording)
    return calls
