"""The pages for people in headless Chromium: previews draw their layers, the query form works.

The previews use Leaflet and Esri Leaflet as the site serves them (``scripts/ensure-web-assets``
installs them from the npm registry), against a live server on 127.0.0.1. Each page must load
without console errors, uncaught errors or any request leaving loopback (no CDN, no basemap).
Screenshots go to ``var/screenshots/`` (printed).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.clients.browser import REPO, ArcGISPage, Chromium, wait_for_idle_server
from tests.clients.test_arcgis_js import POINTS, POLYGONS, points_document, polygons_document

pytestmark = pytest.mark.slow

PAGE = 50  # maxRecordCount: the preview must page to draw every feature
MAP_READY = "window.koopPreview !== undefined && window.koopPreview.ready === true"
LOADED = "document.readyState === 'complete'"
SCREENSHOTS = REPO / "var" / "screenshots"
# Leaflet's SVG renderer draws each feature (a circle marker, a polygon with its holes) as
# one path.
DRAWN = "document.querySelectorAll('.leaflet-overlay-pane path.leaflet-interactive').length"


@pytest.fixture(scope="module")
def web_assets() -> None:
    """Leaflet and Esri Leaflet in the app's static files, as ``make test`` installs them."""
    subprocess.run([str(REPO / "scripts" / "ensure-web-assets")], check=True, timeout=600)


@pytest.fixture
def site(transactional_db, make_dataset, live_server, web_assets) -> Iterator[str]:
    make_dataset("geojson", "dots", points_document(), max_record_count=PAGE)
    make_dataset("geojson", "plots", polygons_document(), max_record_count=PAGE)
    both = {"layers": [{**points_document(), "metadata": {"id": 0, "name": "Dots"}},
                       {**polygons_document(), "metadata": {"id": 1, "name": "Plots"}}]}
    make_dataset("geojson", "both", both, max_record_count=PAGE)
    yield live_server.url
    wait_for_idle_server()  # pages are closed by now (open_page ends first)


@pytest.fixture
def open_page(chromium: Chromium) -> Iterator[Any]:
    """``open_page(url, ready)``: a fresh page; after the test, none may have failed."""
    pages: list[ArcGISPage] = []

    def open_(url: str, ready: str = LOADED) -> ArcGISPage:
        page = chromium.open(url, ready)
        pages.append(page)
        return page

    yield open_
    for page in pages:
        page.close()
    for page in pages:
        assert page.record.blocked == [], "a page tried to leave the machine"
        assert page.record.page_errors == [], "uncaught errors in a page"
        assert page.record.console_errors == [], "errors in a page's console"


def screenshot(page: ArcGISPage, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.loop.run(page.page.screenshot(path=str(path), full_page=True))
    print(f"screenshot: {path}")
    return path


@pytest.mark.parametrize(("dataset", "expected"), [("dots", POINTS), ("plots", POLYGONS)])
def test_layer_preview_draws_every_feature(site, open_page, dataset, expected):
    service = f"{site}/geojson/rest/services/{dataset}/FeatureServer"
    page = open_page(f"{site}/geojson/preview/{dataset}/FeatureServer/0", MAP_READY)
    state = page.evaluate("window.koopPreview")
    assert state["errors"] == []
    assert state["features"] == expected
    assert page.evaluate(DRAWN) == expected
    assert screenshot(page, f"preview-{dataset}").stat().st_size > 1000
    queries = page.requests_to(f"{service}/0/query")
    assert queries, "the map asks its own FeatureServer"
    assert len(queries) > 1  # pages past maxRecordCount, or one query per grid cell
    assert all(request.path.startswith(("/static/", "/geojson/"))
               for request in page.record.requests if request.url.startswith(site))
    # the view holds the layer's extent
    bounds = page.evaluate("(() => { const m = document.getElementById('koop-map');"
                           " return m.getBoundingClientRect().width; })()")
    assert bounds > 200


def test_service_preview_draws_every_layer(site, open_page):
    page = open_page(f"{site}/geojson/preview/both/FeatureServer", MAP_READY)
    state = page.evaluate("window.koopPreview")
    assert state["errors"] == []
    assert [(layer["name"], layer["features"]) for layer in state["layers"]] == [
        ("Dots", POINTS), ("Plots", POLYGONS)]
    assert page.evaluate(DRAWN) == POINTS + POLYGONS
    assert page.evaluate("document.querySelectorAll('.leaflet-control-layers-overlays "
                         "input').length") == 2
    screenshot(page, "preview-service")


def test_a_popup_shows_attributes_as_text(site, open_page):
    page = open_page(f"{site}/geojson/preview/plots/FeatureServer/0", MAP_READY)
    page.loop.run(page.page.locator(".leaflet-overlay-pane path.leaflet-interactive")
                  .first.click(force=True))
    page.loop.run(page.page.wait_for_selector(".leaflet-popup-content table"))
    text = page.evaluate("document.querySelector('.leaflet-popup-content').textContent")
    assert "area_ha" in text
    assert "rank" in text


def test_copy_button(site, open_page):
    page = open_page(f"{site}/geojson/preview/dots/FeatureServer/0", MAP_READY)
    page.loop.run(page.page.click("button[data-copy]"))
    page.loop.run(page.page.wait_for_function(
        "document.querySelector('button[data-copy]').textContent !== 'Copy'"))
    assert page.evaluate("document.querySelector('button[data-copy]').textContent") in (
        "Copied", "Press Ctrl+C")


def test_query_form_submits_and_shows_results(site, open_page):
    page = open_page(f"{site}/geojson/rest/services/dots/FeatureServer/0/query?f=html")
    browser_page = page.page

    async def submit() -> None:
        await browser_page.fill("#q-where", "name = 'gamma' AND rank < 40")
        await browser_page.fill("#q-outFields", "name,rank")
        await browser_page.fill("#q-orderByFields", "rank")
        async with browser_page.expect_navigation():
            await browser_page.click("form.query-form button[type=submit]")

    page.loop.run(submit())
    rows = page.evaluate("Array.from(document.querySelectorAll('table.features tbody tr'))"
                         ".map(row => Array.from(row.cells).slice(1, 3)"
                         ".map(cell => cell.textContent))")
    assert rows == [["gamma", str(rank)] for rank in range(2, 40, 4)]  # after OBJECTID
    assert page.evaluate("document.querySelector('#q-where').value") == \
        "name = 'gamma' AND rank < 40"
    screenshot(page, "query-form")

    async def count() -> None:
        await browser_page.check("input[name=returnCountOnly][value=true]")
        async with browser_page.expect_navigation():
            await browser_page.click("form.query-form button[type=submit]")

    page.loop.run(count())
    assert page.evaluate("document.querySelector('.count strong').textContent") == "10"


def test_directory_and_landing_pages_load_cleanly(site, open_page):
    base = f"{site}/geojson/rest/services/dots/FeatureServer"
    for url in (f"{site}/", f"{site}/rest/services?f=html", f"{base}?f=html",
                f"{base}/0?f=html", f"{base}/layers?f=html", f"{site}/rest/info?f=html"):
        page = open_page(url)
        assert page.evaluate("getComputedStyle(document.body).margin") == "0px", url  # CSS
    screenshot(page, "rest-info")
