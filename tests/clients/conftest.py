"""Fixtures for client tests: the ArcGIS Maps SDK for JavaScript page in headless Chromium.

A public layer::

    def test_x(arcgis_js, live_server, server_requests):
        drawn = arcgis_js.draw_layer(f"{live_server.url}/geojson/rest/services/a/FeatureServer/0",
                                     wkid=3857, layerQuery={"where": "rank < 3"})
        drawn["view"]["featureCount"], drawn["layer"]["fields"], drawn["layerQuery"]["features"]
        arcgis_js.requests_to(layer_url)  # every request the page made there (.token, .params)
        server_requests                   # every request our server received, for cross-checks

A secured layer, signing in as an app does (generateToken, then the token on every request)::

        root = f"{live_server.url}/geojson"        # the URL before /rest/services
        service = f"{root}/rest/services/a/FeatureServer"
        signed = arcgis_js.sign_in(root, "alice", "password", services=[service])
        drawn = arcgis_js.draw_layer(service + "/0", wkid=3857)
        assert all(r.token == signed["token"] for r in arcgis_js.requests_to(service))

or as a person does: the layer answers 499, the SDK reads ``<root>/rest/info``, asks for a
sign-in (answered by the page), generates a token and retries with it::

        arcgis_js.answer_challenges("alice", "password")
        drawn = arcgis_js.draw_layer(service + "/0", wkid=4326)
        arcgis_js.challenges()  # [{"resource": "a", "server": root, "answered": "alice"}]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.signals import request_started

from tests.clients.browser import (
    LEAFLET_DIR,
    ArcGISPage,
    Chromium,
    PageServer,
    build_page,
    ensure_node_modules,
    iter_chromium,
)
from tests.clients.generated import GeneratedLayer, generate


@pytest.fixture(scope="package")
def arcgis_js_page_url() -> Iterator[str]:
    """The bundled test page (built once per lockfile), served from its own loopback port."""
    with PageServer(build_page()) as server:
        yield server.url


@pytest.fixture(scope="package")
def chromium() -> Iterator[Chromium]:
    """One browser for the client tests, closed when they are done (not at the session's end)."""
    yield from iter_chromium()


@pytest.fixture(scope="package")
def esri_leaflet_page_url() -> Iterator[str]:
    """The Esri Leaflet page (``esri_leaflet/``, its npm packages as locked), from loopback."""
    ensure_node_modules(LEAFLET_DIR)
    with PageServer(LEAFLET_DIR, assets=None) as server:
        yield server.url


def _fresh_page(chromium: Chromium, url: str) -> Iterator[ArcGISPage]:
    page = chromium.open(url)
    try:
        yield page
    finally:
        page.close()
    assert page.record.blocked == [], "the page tried to leave the machine"
    assert page.record.page_errors == [], "uncaught errors in the page"


@pytest.fixture
def arcgis_js(chromium: Chromium, arcgis_js_page_url: str) -> Iterator[ArcGISPage]:
    """A fresh page (own context: no cookies, cache or credentials from other tests).

    Fails the test if the page tried any non-loopback request or threw an uncaught error.
    """
    yield from _fresh_page(chromium, arcgis_js_page_url)


@pytest.fixture
def esri_leaflet(chromium: Chromium, esri_leaflet_page_url: str) -> Iterator[ArcGISPage]:
    """The Esri Leaflet page, fresh, with the same checks as ``arcgis_js``."""
    yield from _fresh_page(chromium, esri_leaflet_page_url)


@pytest.fixture
def serve_generated(transactional_db, make_dataset, live_server, data_dir, settings):
    """``serve_generated(kind, count, max_record_count, size=1.0)``: data made by
    ``generated.generate`` as a GeoJSON dataset; answers (the data, the layer's live URL)."""
    # The test settings' 1 MB download cap also holds a data-directory file that is read
    # whole (under ingest.STREAM_MIN_BYTES, 2 MiB): lift it, these files are the test's own.
    settings.KOOP = {**settings.KOOP, "MAX_DOWNLOAD_BYTES": 64 * 1024 * 1024}

    def serve(kind: str, count: int, max_record_count: int, size: float = 1.0
              ) -> tuple[GeneratedLayer, str]:
        data = generate(kind, count, size=size)
        name = f"{kind}_{count}"
        data.write(data_dir / f"{name}.geojson")
        make_dataset("geojson", name, options={"source": f"{name}.geojson"},
                     max_record_count=max_record_count)
        return data, f"{live_server.url}/geojson/rest/services/{name}/FeatureServer/0"

    return serve


@dataclass
class ServerRequest:
    """One request as our server received it (live_server runs in this process)."""

    method: str
    path: str
    query: str
    authorization: str


@pytest.fixture
def server_requests() -> Iterator[list[ServerRequest]]:
    """Every request that reached Django during the test, in order."""
    received: list[ServerRequest] = []

    def record(sender: Any, environ: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if environ is not None:
            received.append(ServerRequest(
                method=environ.get("REQUEST_METHOD", ""), path=environ.get("PATH_INFO", ""),
                query=environ.get("QUERY_STRING", ""),
                authorization=environ.get("HTTP_AUTHORIZATION", "")
                or environ.get("HTTP_X_ESRI_AUTHORIZATION", "")))

    request_started.connect(record, dispatch_uid="tests.clients.server_requests")
    try:
        yield received
    finally:
        request_started.disconnect(dispatch_uid="tests.clients.server_requests")
