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

from tests.clients.browser import ArcGISPage, Chromium, PageServer, build_page, iter_chromium


@pytest.fixture(scope="package")
def arcgis_js_page_url() -> Iterator[str]:
    """The bundled test page (built once per lockfile), served from its own loopback port."""
    with PageServer(build_page()) as server:
        yield server.url


@pytest.fixture(scope="package")
def chromium() -> Iterator[Chromium]:
    """One browser for the client tests, closed when they are done (not at the session's end)."""
    yield from iter_chromium()


@pytest.fixture
def arcgis_js(chromium: Chromium, arcgis_js_page_url: str) -> Iterator[ArcGISPage]:
    """A fresh page (own context: no cookies, cache or credentials from other tests).

    Fails the test if the page tried any non-loopback request or threw an uncaught error.
    """
    page = chromium.open(arcgis_js_page_url)
    try:
        yield page
    finally:
        page.close()
    assert page.record.blocked == [], "the page tried to leave the machine"
    assert page.record.page_errors == [], "uncaught errors in the page"


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
