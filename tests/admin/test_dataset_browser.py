"""The dataset list and page in headless Debian Chromium at 1366x768 (issue 11).

Signed in through the admin's login form against a live server on 127.0.0.1: the list fits
the window, the copy buttons copy (clipboard API, and the fallback), the embedded preview draws
the features of a dataset that is not public, "Refresh now" refreshes. No page may log errors
or try to leave loopback. Screenshots go to ``var/screenshots/`` (printed).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from django.contrib.auth import get_user_model

from koop_app import data
from koop_app.models import Dataset
from tests.clients.browser import (
    REPO,
    ArcGISPage,
    Chromium,
    iter_chromium,
    wait_for_idle_server,
)
from tests.conftest import collection, feature, point

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 1366, 768
LOADED = "document.readyState === 'complete'"
MAP_READY = "window.koopPreview !== undefined && window.koopPreview.ready === true"
# Leaflet's SVG renderer draws each feature as one path (circle markers included).
DRAWN = "document.querySelectorAll('.leaflet-overlay-pane path.leaflet-interactive').length"
OVERFLOW = "document.documentElement.scrollWidth"
RESULTS_OVERFLOW = """(() => {
    const box = document.querySelector('#changelist .results');
    const table = document.getElementById('result_list');
    return {inner: box.scrollWidth <= box.clientWidth,
            right: table.getBoundingClientRect().right <= window.innerWidth};
})()"""
SCREENSHOTS = REPO / "var" / "screenshots"
PARKS = 25


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    yield from iter_chromium()


@pytest.fixture(scope="module")
def web_assets() -> None:
    """Leaflet and Esri Leaflet in the app's static files, as ``make test`` installs them."""
    subprocess.run([str(REPO / "scripts" / "ensure-web-assets")], check=True, timeout=600)


@pytest.fixture
def site(transactional_db, make_dataset, live_server, web_assets,
         data_dir) -> Iterator[dict[str, Any]]:
    """A realistic list: long names, a failing dataset with a long error, a disabled one, a
    signed-in-only one; and a superuser."""
    get_user_model().objects.create_superuser("admin", "admin@example.org", "a-long-password")
    parks = collection([feature({"name": f"park {i}", "area_ha": i * 1.5},
                                point(4.3 + i / 100, 50.8 + i / 200)) for i in range(PARKS)])
    private = make_dataset("geojson", "city-parks-and-green-spaces-inventory", parks,
                           name="City parks and green spaces inventory (2024 survey)",
                           access=Dataset.SIGNED_IN, max_record_count=10)
    data.refresh(private)
    for index in range(8):
        data.refresh(make_dataset("geojson", f"layer-{index:02d}-with-a-rather-long-identifier",
                                  parks, name=f"Municipal dataset number {index} with a long "
                                              "descriptive title"))
    make_dataset("geojson", "switched-off", parks, enabled=False, access=Dataset.RESTRICTED)
    broken = make_dataset("geojson", "broken-source", b"{" + b"x" * 300)
    with pytest.raises(Exception):  # noqa: B017  (recorded as the dataset's last error)
        data.refresh(broken)
    broken.refresh_from_db()
    broken.last_error += "\n" + "a very long second line " * 40
    broken.save(update_fields=["last_error"])
    yield {"url": live_server.url, "private": private, "broken": broken}
    wait_for_idle_server()  # the admin page (closed first) may have left a query running


@pytest.fixture
def admin_page(chromium: Chromium, site: dict[str, Any]) -> Iterator[ArcGISPage]:
    """A 1366x768 page signed in to the admin as the superuser, clipboard allowed."""
    base = site["url"]
    page = chromium.open(f"{base}/admin/login/?next=/admin/koop_app/dataset/", LOADED)
    try:
        async def sign_in() -> None:
            await page.page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
            await page.context.grant_permissions(["clipboard-read", "clipboard-write"],
                                                 origin=base)
            await page.page.fill("#id_username", "admin")
            await page.page.fill("#id_password", "a-long-password")
            async with page.page.expect_navigation():
                await page.page.click("input[type=submit]")

        page.loop.run(sign_in())
        assert page.page.url.endswith("/admin/koop_app/dataset/"), page.page.url
        yield page
    finally:
        page.close()
    assert page.record.blocked == [], "a page tried to leave the machine"
    assert page.record.page_errors == [], "uncaught errors in a page"
    assert page.record.console_errors == [], "errors in a page's console"


def screenshot(page: ArcGISPage, name: str, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.loop.run(page.page.screenshot(path=str(path), full_page=full_page))
    print(f"screenshot: {path}")


def goto(page: ArcGISPage, url: str) -> None:
    page.loop.run(page.page.goto(url, wait_until="load"))


def test_the_list_fits_1366_and_copies(admin_page, site):
    page = admin_page
    assert page.evaluate("window.innerWidth") == WIDTH
    # the admin's sidebar is open and the filters are shown: the narrowest the table gets
    assert page.evaluate("document.querySelector('.main').classList.contains('shifted')")
    assert page.evaluate("document.getElementById('changelist-filter') !== null")
    assert page.evaluate("document.querySelectorAll('#result_list tbody tr').length") == 11
    assert page.evaluate(OVERFLOW) <= WIDTH
    # nor inside: the admin wraps the table in a box that would scroll on its own
    assert page.evaluate(RESULTS_OVERFLOW) == {"inner": True, "right": True}
    screenshot(page, "admin-dataset-list-1366")
    # the failing dataset's row stands out: a red badge and a tinted row
    failing = page.evaluate("""(() => {
        const badge = document.querySelector('#result_list .koop-badge-error');
        const row = badge.closest('tr');
        return {text: row.querySelector('.koop-error-line').textContent,
                background: getComputedStyle(row.querySelector('td')).backgroundColor,
                badge: getComputedStyle(badge).backgroundColor};
    })()""")
    assert failing["text"].startswith(site["broken"].last_error.splitlines()[0][:40])
    assert failing["background"] == "rgb(253, 236, 236)"
    assert failing["badge"] != "rgba(0, 0, 0, 0)"
    # the copy button of a row copies the absolute URL (clipboard API)
    service = f"{site['url']}/geojson/rest/services/city-parks-and-green-spaces-inventory/" \
              "FeatureServer"
    selector = "button.koop-copy[data-copy-url$='/city-parks-and-green-spaces-inventory/" \
               "FeatureServer']"
    page.loop.run(page.page.click(selector))
    page.loop.run(page.page.wait_for_function(
        f'document.querySelector("{selector}").textContent === "Copied"'))
    assert page.evaluate("navigator.clipboard.readText()") == service
    # without the clipboard API (plain http on another host): the execCommand fallback
    page.evaluate("navigator.clipboard.writeText('-'); Object.defineProperty(window, "
                  "'isSecureContext', {value: false})")
    other = "button.koop-copy[data-copy-url$='/layer-03-with-a-rather-long-identifier/" \
            "FeatureServer']"
    page.loop.run(page.page.click(other))
    page.loop.run(page.page.wait_for_function(
        f'document.querySelector("{other}").textContent === "Copied"'))
    assert page.evaluate("navigator.clipboard.readText()") == (
        f"{site['url']}/geojson/rest/services/layer-03-with-a-rather-long-identifier/"
        "FeatureServer")


def test_the_page_copies_previews_and_refreshes(admin_page, site):
    page = admin_page
    private = site["private"]
    goto(page, f"{site['url']}/admin/koop_app/dataset/{private.pk}/change/")
    assert page.evaluate(OVERFLOW) <= WIDTH
    service = f"{site['url']}/geojson/rest/services/city-parks-and-green-spaces-inventory/" \
              "FeatureServer"
    assert page.evaluate("document.getElementById('koop-feature-server-url').value") == service
    page.loop.run(page.page.click("#koop-copy-url"))
    page.loop.run(page.page.wait_for_function(
        "document.getElementById('koop-copy-status').textContent === 'Copied'"))
    assert page.evaluate("navigator.clipboard.readText()") == service

    # The embedded preview draws every feature of this signed-in-only dataset, paging past
    # its maxRecordCount, with the admin's session.
    async def preview() -> Any:
        element = await page.page.wait_for_selector("#koop-preview-map")
        await element.scroll_into_view_if_needed()
        frame = await element.content_frame()
        await frame.wait_for_function(MAP_READY, timeout=60_000)
        return {"state": await frame.evaluate("window.koopPreview"),
                "drawn": await frame.evaluate(DRAWN)}

    drawn = page.loop.run(preview())
    assert drawn["state"]["errors"] == []
    assert drawn["state"]["features"] == PARKS and drawn["drawn"] == PARKS
    screenshot(page, "admin-dataset-page", full_page=False)  # the panel and the map

    # Refresh now: a real POST with the CSRF token; the refresh runs here (no worker).
    async def refresh() -> None:
        async with page.page.expect_navigation():
            await page.page.click("#koop-refresh-now")

    before = private.refreshes.count()
    page.loop.run(refresh())
    assert "Refreshed 1 dataset." in page.evaluate(
        "document.querySelector('.messagelist').textContent")
    assert private.refreshes.count() == before + 1
    assert private.refreshes.latest("started").trigger == "admin"


def test_a_failing_dataset_shows_its_error_in_full(admin_page, site):
    page = admin_page
    broken = site["broken"]
    goto(page, f"{site['url']}/admin/koop_app/dataset/{broken.pk}/change/")
    assert page.evaluate("document.getElementById('koop-last-error').textContent") == \
        broken.last_error
    box = page.evaluate("""(() => {
        const pre = document.getElementById('koop-last-error');
        return {wrap: getComputedStyle(pre).whiteSpace,
                fits: pre.scrollWidth <= pre.clientWidth};
    })()""")
    assert box == {"wrap": "pre-wrap", "fits": True}
    assert page.evaluate(OVERFLOW) <= WIDTH
    assert page.evaluate("document.getElementById('koop-page').classList.contains("
                         "'koop-failing')")
    screenshot(page, "admin-dataset-page-failing")
    assert orjson.loads(page.evaluate(
        "JSON.stringify(Array.from(document.querySelectorAll('#koop-refresh-now, "
        "#koop-clear-cache')).map(b => b.textContent))")) == ["Refresh now", "Clear cache"]


def test_refresh_now_shows_its_progress_while_it_runs(admin_page, site, make_dataset,
                                                      source_server, settings):
    """No Celery worker: the refresh runs inside the POST, and the page it was asked from
    shows the progress live until the answer comes."""
    settings.KOOP = {**settings.KOOP, "MAX_FETCH_SECONDS": 20, "READ_TIMEOUT": 5.0}
    body = orjson.dumps(collection([feature({"n": i}, point(i / 10, i / 20))
                                    for i in range(2000)]))
    url = source_server.route_slowly("/admin-slow.geojson", body, 3.0, pieces=20)
    slow = make_dataset("geojson", "slow-source", options={"source": url})
    # Cached first: else the page's map preview would fetch it, and "Refresh now" would
    # join that fetch (one flight per dataset) instead of running one of its own.
    data.refresh(slow)
    page = admin_page
    goto(page, f"{site['url']}/admin/koop_app/dataset/{slow.pk}/change/")
    assert not page.evaluate("document.querySelector('#koop-page .koop-progress')"
                             ".classList.contains('koop-running')")

    # What the panel's progress line shows while the POST runs, as the page logs it (the
    # page is about to be replaced, so the test listens to its console).
    seen: list[str] = []
    page.page.on("console", lambda message: seen.append(message.text)
                 if message.text.startswith("koop-test ") else None)
    page.evaluate("""(() => {
        const span = document.querySelector('#koop-page .koop-progress');
        const button = document.getElementById('koop-refresh-now');
        new MutationObserver(() => {
            if (span.classList.contains('koop-running')) {
                console.log('koop-test progress: ' + span.textContent);
            }
        }).observe(span, {childList: true, characterData: true, subtree: true,
                          attributes: true});
        new MutationObserver(() => {
            console.log('koop-test button: ' + button.disabled + ' ' + button.textContent);
        }).observe(button, {childList: true, attributes: true});
    })()""")

    async def refresh() -> None:
        async with page.page.expect_navigation(timeout=60_000):
            await page.page.click("#koop-refresh-now")

    page.loop.run(refresh(), timeout=90)
    assert "koop-test button: true Refreshing…" in seen, seen  # it says it is busy
    assert any(text.startswith("koop-test progress: fetch: ") and "read" in text
               for text in seen), seen  # "fetch: 84.0 kB read, 0 features"
    assert "Refreshed 1 dataset." in page.evaluate(
        "document.querySelector('.messagelist').textContent")
    assert slow.refreshes.latest("started").trigger == "admin"
    assert slow.refreshes.count() == 2
