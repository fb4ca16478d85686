"""Proof of issue 11: a GIS administrator walks the admin in headless Chromium, no docs at hand.

The site runs as in production as far as one process allows: Django's live server with DEBUG
off, Redis as data cache and Celery broker, and a real Celery worker (prefork, its own process)
that runs the refreshes the admin queues. The administrator is a superuser the test creates.
They add a GeoJSON dataset by uploading a file and a CSV dataset by picking a file in the data
folder (never typing JSON), check each source before saving, refresh the CSV and watch its
progress, see the preview map draw the GeoJSON, copy the FeatureServer URL, open the services
directory, and find that a missing file is refused with its name in the message.

Selectors follow ``CONTRACT.md`` (the admin's UI contract). Every step saves a screenshot under
``var/test-screenshots/admin-walkthrough/NN-step.png`` (``NN-step-FAILED.png`` when it fails),
prints its path and checks it is not blank. A failing step does not end the walk: later steps
that need what it should have made are reported as not run, datasets a failed step should have
added are made through the ORM so that the other steps still run, and the test fails at the end
with every step's message. No request may leave loopback.
"""

from __future__ import annotations

import base64
import re
import shutil
import time
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from playwright.async_api import TimeoutError as PlaywrightTimeout

from koop_app import data
from koop_app.conf import koop_settings
from koop_app.data.flight import process_name
from koop_app.models import Dataset, Provider, RefreshLog
from tests.clients.browser import LOOPBACK_HOSTS, REPO, Chromium
from tests.test_celery_live import live_worker, wait_for

pytestmark = pytest.mark.slow

SCREENSHOTS = REPO / "var" / "test-screenshots" / "admin-walkthrough"
USERNAME, PASSWORD = "gis-admin", "walk-the-admin-1366"
VIEWPORT = {"width": 1366, "height": 900}  # the laptop screen
PARKS = 24  # features of the uploaded GeoJSON
# Rows of the CSV: its refresh must outlast progress.js's slow poll (5 s while nothing runs) so
# that the running state is on screen at least once: about 70 MB, 7 s or more on the worker
# (1,000,000 rows took 3.6 s, short enough to fall between two polls).
TREES = 2_000_000
WAIT = 10_000  # ms: an element of a page that has loaded
NAVIGATION = 60_000  # ms: a form post (a check reads the whole source)
# Leaflet draws a circle marker or a shape as an SVG path, a plain marker as an icon.
DRAWN = ("document.querySelectorAll('.leaflet-overlay-pane path.leaflet-interactive,"
         " .leaflet-marker-pane .leaflet-marker-icon').length")
MAP_READY = "window.koopPreview !== undefined && window.koopPreview.ready === true"
# A running refresh as .koop-progress shows it ("normalize: 3.1 MB of 35.0 MB read, 90000
# features", or a percentage), not a finished one ("done").
RUNNING = re.compile(r"\d\s*%|\bread\b|^\s*(start|fetch|normalize|store|index)\b", re.I)

# Keeps every distinct text any .koop-progress element showed on each page, in order of
# first appearance.
PROGRESS_RECORDER = """
(() => {
  const seen = [];
  window.__koopProgressSeen = seen;
  const record = () => document.querySelectorAll('.koop-progress').forEach((element) => {
    const text = (element.textContent || '').trim();
    if (text && !seen.includes(text)) { seen.push(text); }
  });
  const start = () => {
    record();
    new MutationObserver(record).observe(document.documentElement,
      {subtree: true, childList: true, characterData: true});
  };
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
"""

# A PNG is blank when nearly every pixel has the same colour: decoded and sampled by Chromium
# itself (no imaging package needed), 160 px wide, colours in 4 bits per channel.
PNG_STATS = """
async (b64) => {
  const blob = await (await fetch('data:image/png;base64,' + b64)).blob();
  const bitmap = await createImageBitmap(blob);
  const width = 160, height = Math.max(1, Math.round(bitmap.height * 160 / bitmap.width));
  const context = new OffscreenCanvas(width, height).getContext('2d');
  context.drawImage(bitmap, 0, 0, width, height);
  const pixels = context.getImageData(0, 0, width, height).data;
  const counts = new Map();
  for (let i = 0; i < pixels.length; i += 4) {
    const key = ((pixels[i] >> 4) << 8) | ((pixels[i + 1] >> 4) << 4) | (pixels[i + 2] >> 4);
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  let top = 0;
  counts.forEach((n) => { top = Math.max(top, n); });
  return {width: bitmap.width, height: bitmap.height, colours: counts.size,
          background: top / (width * height)};
}
"""


def parks_document() -> dict[str, Any]:
    """Parks as a city's open-data portal would publish them: points with a few attributes."""
    kinds = ["garden", "playground", "forest", "square"]
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point",
                                         "coordinates": [5.70 + (i % 6) * 0.02,
                                                         45.15 + (i // 6) * 0.02]},
         "properties": {"park_name": f"Park {i:02d}", "kind": kinds[i % 4],
                        "area_ha": round(0.5 + i * 0.75, 2)}}
        for i in range(PARKS)]}


def write_trees(path: Path, rows: int) -> None:
    """A large CSV of street trees, latitude/longitude columns found by name."""
    species = ["oak", "plane", "lime", "maple", "birch", "ash", "cherry"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("tree_id,species,height_m,lat,lon\n")
        for start in range(0, rows, 50_000):
            out.write("".join(
                f"{i},{species[i % 7]},{2 + (i * 37 % 280) / 10:.1f},"
                f"{45.10 + (i * 7919 % 100_000) / 1_000_000:.6f},"
                f"{5.65 + (i * 104_729 % 100_000) / 1_000_000:.6f}\n"
                for i in range(start, min(rows, start + 50_000))))


def plain_digits(text: str) -> str:
    """``1,000,000`` / ``1 000 000`` / ``1.000.000`` as ``1000000``, wherever the page puts it."""
    return re.sub(r"(?<=\d)[,.'\s\u00a0\u202f](?=\d{3}(?!\d))", "", text)


class StepFailed(AssertionError):
    """A step's expectation, in words a reader of the run understands."""


async def need(where: Any, selector: str, what: str, state: str = "visible",
               timeout: int = WAIT) -> Any:
    """The element, or a failure naming it, the page and the contract."""
    try:
        return await where.wait_for_selector(selector, state=state, timeout=timeout)
    except PlaywrightTimeout:
        raise StepFailed(f"{what}: no {state} `{selector}` on {where.url} within "
                         f"{timeout / 1000:.0f} s (CONTRACT.md)") from None


async def submit(page: Any, selector: str, what: str) -> None:
    """Click a submit button and wait for the page it posts to."""
    button = await need(page, selector, what)
    async with page.expect_navigation(wait_until="load", timeout=NAVIGATION):
        await button.click(timeout=NAVIGATION)  # the click waits for the post's answer


async def options_of(page: Any, select: str) -> list[tuple[str, str]]:
    """A select's options as (value, label)."""
    return [tuple(pair) for pair in await page.eval_on_selector_all(
        f"{select} option", "options => options.map(o => [o.value, o.textContent.trim()])")]


async def choose(page: Any, select: str, wanted: Callable[[str, str], bool], what: str) -> str:
    """Select the first option that ``wanted(value, label)`` accepts; its value. A select in
    a collapsed fieldset (Django's <details>) is first shown, as a person would open it."""
    element = await need(page, select, what, state="attached")
    if not await element.is_visible():
        summary = await element.evaluate_handle(
            "node => { const d = node.closest('details'); return d && !d.open ?"
            " d.querySelector('summary') : null; }")
        if summary.as_element() is not None:
            await summary.as_element().click()
    await need(page, select, what)
    found = await options_of(page, select)
    for value, label in found:
        if value and wanted(value, label):
            await page.select_option(select, value)
            return value
    raise StepFailed(f"{what}: no fitting option in `{select}`: {found}")


async def errors_on(page: Any) -> str:
    """The form's error notes and messages, to explain a failed save or check."""
    texts = await page.eval_on_selector_all(
        ".errornote, .errorlist, .messagelist .error, .messagelist .warning",
        "nodes => nodes.map(n => n.textContent.trim())")
    return "; ".join(texts) or "none shown"


@dataclass
class Record:
    """What the admin's pages did that they must not: leave loopback, fail, throw."""

    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


class AdminBrowser:
    """One browser context (1366 px, clipboard allowed, loopback only) with the admin's page
    and a spare page that reads screenshots back. Playwright runs in the Chromium fixture's
    loop thread; ``run`` waits for a coroutine there."""

    def __init__(self, chromium: Chromium, origin: str) -> None:
        self.loop = chromium.loop
        self.origin = origin
        self.record = Record()
        self.context: Any = None
        self.page: Any = None
        self.inspector: Any = None
        self.run(self._open(chromium.browser))

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 180) -> Any:
        return self.loop.run(coroutine, timeout=timeout)

    async def _open(self, browser: Any) -> None:
        self.context = await browser.new_context(
            viewport=VIEWPORT, service_workers="block",
            permissions=["clipboard-read", "clipboard-write"])
        await self.context.add_init_script(PROGRESS_RECORDER)
        await self.context.route("**/*", self._route)
        self.context.on("requestfailed", self._on_failed)
        self.context.on("console", self._on_console)
        self.context.on("weberror", lambda error: self.record.page_errors.append(
            str(error.error)))
        self.page = await self.context.new_page()
        self.page.set_default_timeout(WAIT)
        self.page.set_default_navigation_timeout(NAVIGATION)
        self.inspector = await self.context.new_page()

    async def _route(self, route: Any) -> None:
        parts = urlsplit(route.request.url)
        if parts.scheme in ("data", "blob", "about") or parts.hostname in LOOPBACK_HOSTS:
            await route.continue_()
        else:
            self.record.blocked.append(route.request.url)
            await route.abort("blockedbyclient")

    def _on_failed(self, request: Any) -> None:
        reason = request.failure or ""
        # A poll in flight when its page navigates away is cancelled, as in any browser.
        if reason == "net::ERR_ABORTED" and request.resource_type in ("fetch", "xhr"):
            return
        self.record.failed.append(f"{request.method} {request.url}: {reason}")

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            where = message.page.url if message.page else "?"
            self.record.console_errors.append(f"{message.text} ({where})")

    def screenshot(self, path: Path) -> dict[str, Any]:
        """Save the whole page as ``path``; Chromium's reading of it (size, colours)."""

        async def shoot() -> dict[str, Any]:
            await self.page.screenshot(path=str(path), full_page=True, timeout=30_000)
            encoded = base64.b64encode(path.read_bytes()).decode()
            return await self.inspector.evaluate(PNG_STATS, encoded)

        return self.run(shoot(), timeout=60)

    def close(self) -> None:
        if self.context is not None:
            self.run(self.context.close(), timeout=30)
            self.context = None


@dataclass
class Walk:
    """Numbered steps, each followed by a screenshot; failures are kept, the walk goes on."""

    browser: AdminBrowser
    folder: Path
    failures: list[str] = field(default_factory=list)
    done: dict[str, bool] = field(default_factory=dict)
    number: int = 0
    label: str = ""

    def soft(self, message: str) -> None:
        """A failure that leaves the step able to go on another way (told in ``message``)."""
        self.failures.append(f"{self.label}: {message}")
        print(f"step {self.label}: FAILED IN PART: {message}")

    def step(self, name: str, action: Callable[[], None], needs: tuple[str, ...] = ()) -> bool:
        self.number += 1
        label = self.label = f"{self.number:02d}-{name}"
        missing = [n for n in needs if not self.done.get(n)]
        if missing:
            self.done[name] = False
            self.failures.append(f"{label}: not run: it needs {', '.join(missing)}")
            print(f"step {label}: NOT RUN (needs {', '.join(missing)})")
            return False
        started = time.monotonic()
        try:
            action()
        except Exception as exc:  # noqa: BLE001  (any failure is reported, the walk goes on)
            self.done[name] = False
            message = str(exc).strip().splitlines()
            text = " | ".join(message[:6])[:900] if message else repr(exc)
            shot = self.shoot(f"{label}-FAILED")
            self.failures.append(f"{label}: {type(exc).__name__}: {text} [screenshot {shot}]")
            print(f"step {label}: FAILED after {time.monotonic() - started:.1f} s: {text}")
            return False
        self.done[name] = True
        shot = self.shoot(label)
        print(f"step {label}: ok in {time.monotonic() - started:.1f} s, screenshot {shot}")
        return True

    def shoot(self, label: str) -> Path | str:
        """The screenshot of this moment; a blank one is a failure of its own."""
        path = self.folder / f"{label}.png"
        try:
            stats = self.browser.screenshot(path)
        except Exception as exc:  # noqa: BLE001  (a dead page must not hide the step's failure)
            self.failures.append(f"{label}: no screenshot: {exc}")
            return f"(none: {exc})"
        size = path.stat().st_size
        if size < 5_000 or stats["colours"] < 4 or stats["background"] > 0.995:
            self.failures.append(f"{label}: the screenshot looks blank ({size} bytes, "
                                 f"{stats}) [{path}]")
        return path


@pytest.fixture(scope="module")
def web_assets() -> None:
    """Leaflet and Esri Leaflet in the app's static files, as ``make test`` installs them."""
    import subprocess

    subprocess.run([str(REPO / "scripts" / "ensure-web-assets")], check=True, timeout=600)


@pytest.fixture
def worker(request, transactional_db, settings, tmp_path) -> Iterator[Any]:
    """Compose's worker: prefork (one child) on Redis, which is also the data cache. No beat:
    only the admin's "Refresh now" refreshes here."""
    yield from live_worker(request, settings, tmp_path, "redis",
                           ("--pool", "prefork", "-c", "1"))


@pytest.fixture
def origin(live_server) -> str:
    """The live server as the browser reaches it: 127.0.0.1 (it listens on localhost)."""
    return f"http://127.0.0.1:{urlsplit(live_server.url).port}"


@pytest.fixture
def admin_browser(chromium: Chromium, origin: str) -> Iterator[AdminBrowser]:
    browser = AdminBrowser(chromium, origin)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def screenshots() -> Path:
    """The kept folder, emptied of an earlier run's pictures."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS


def test_a_gis_administrator_walks_the_admin(worker, web_assets, data_dir, tmp_path, origin,
                                             admin_browser, screenshots, make_dataset):
    started = time.monotonic()
    get_user_model().objects.create_superuser(USERNAME, "gis@example.org", PASSWORD)
    browser = admin_browser
    page = browser.page
    run = browser.run
    walk = Walk(browser, screenshots)
    providers = {p.name: p for p in Provider.sync_from_registry()}

    upload = tmp_path / "city-parks.geojson"  # on the administrator's desktop, not the server
    upload.write_bytes(orjson.dumps(parks_document()))
    write_trees(data_dir / "walk" / "trees.csv", TREES)
    print(f"data written in {time.monotonic() - started:.1f} s")
    found: dict[str, Any] = {}

    def change_url(dataset: Dataset) -> str:
        return origin + reverse("admin:koop_app_dataset_change", args=[dataset.pk])

    # 1. Log in ------------------------------------------------------------------------------
    def log_in() -> None:
        async def go() -> None:
            await page.goto(f"{origin}/admin/")
            await need(page, "input#id_username", "the login form")
            await page.fill("input#id_username", USERNAME)
            await page.fill("input#id_password", PASSWORD)
            await submit(page, "form#login-form [type=submit]", "the login button")
            await need(page, "#user-tools", f"the admin after logging in ({await errors_on(page)})")
            await need(page, 'a[href$="/admin/koop_app/dataset/add/"]',
                       "the datasets' Add link on the admin's index")

        run(go())

    walk.step("login", log_in)

    # 2. A GeoJSON dataset by upload ---------------------------------------------------------
    async def open_add_form(provider_words: tuple[str, ...]) -> str:
        """From the index, Add dataset; pick the provider whose label has these words."""
        await page.goto(f"{origin}/admin/")
        async with page.expect_navigation(wait_until="load"):
            await page.click('a[href$="/admin/koop_app/dataset/add/"]')
        value = await choose(
            page, "select#id_provider",
            lambda v, label: all(w.lower() in label.lower() for w in provider_words),
            f"the provider picker with a human label containing {provider_words}")
        await need(page, "#id_opt_source", "the provider's `source` option, shown once the "
                                           "provider is picked, without a save")
        description = await need(page, "#koop-provider-description",
                                 "the chosen provider's description")
        if not (await description.inner_text()).strip():
            raise StepFailed("#koop-provider-description is empty")
        if await page.locator("textarea[name=options]:visible").count():
            raise StepFailed("the form still shows the raw JSON options textarea")
        return value

    def geojson_form() -> None:
        value = run(open_add_form(("GeoJSON",)))
        if value != str(providers["geojson"].pk):
            raise StepFailed(f"the GeoJSON label picked provider {value}, not geojson")

    walk.step("geojson-form", geojson_form, needs=("login",))

    def geojson_upload() -> None:
        async def go() -> str:
            await page.fill("#id_dataset_id", "walk_parks")
            await page.fill("#id_name", "City parks")
            chooser = await need(page, "input[type=file].koop-upload", "the upload input",
                                 state="attached")
            await chooser.set_input_files(str(upload))
            await (await need(page, "button.koop-upload-button", "the Upload button")).click()
            try:
                await page.wait_for_function(
                    "document.querySelector('#id_opt_source').value.endsWith('.geojson')",
                    timeout=30_000)
            except PlaywrightTimeout:
                said = await page.eval_on_selector_all(
                    ".koop-upload-status", "nodes => nodes.map(n => n.textContent.trim())")
                raise StepFailed("after the upload, #id_opt_source does not hold the uploaded "
                                 f"file's path: {await page.input_value('#id_opt_source')!r}; "
                                 f".koop-upload-status says {said}") from None
            status = await need(page, ".koop-upload-status", "the upload's status")
            source = await page.input_value("#id_opt_source")
            if source not in await status.inner_text():
                raise StepFailed(f".koop-upload-status does not name {source!r}: "
                                 f"{await status.inner_text()!r}")
            return source

        source = run(go())
        stored = Path(koop_settings.DATA_DIR) / source
        assert stored.is_file(), f"the upload is not in the data folder: {stored}"
        assert stored.read_bytes() == upload.read_bytes(), "the uploaded file changed on the way"
        found["parks_source"] = source

    walk.step("geojson-upload", geojson_upload, needs=("geojson-form",))

    async def check_source(what: str, fields: tuple[str, ...], geometry: str,
                           count: int | None) -> str:
        """Click "Check the source"; the panel's summary (after checking what it shows)."""
        await submit(page, 'button[name="_check"]', 'the "Check the source" button')
        panel = await need(page, "section#koop-check",
                           f"the check's result panel for {what} ({await errors_on(page)})")
        summary = await need(page, "section#koop-check .koop-check-summary", "the summary")
        text = plain_digits(await summary.inner_text())
        if geometry.lower() not in text.lower():
            raise StepFailed(f"the summary does not give the geometry type {geometry}: {text!r}")
        if count is not None and not re.search(rf"(?<!\d){count}(?!\d)", text):
            raise StepFailed(f"the summary does not give the {count} features: {text!r}")
        table = await need(page, "table#koop-check-fields", "the detected fields' table")
        listed = await table.inner_text()
        missing = [name for name in fields if name not in listed]
        if missing:
            raise StepFailed(f"the fields' table lacks {missing}: {listed!r}")
        rows = await page.locator("table#koop-check-rows tbody tr").count()
        if rows < 1:
            raise StepFailed("table#koop-check-rows shows no rows of the source")
        if await panel.query_selector_all(".errornote"):
            raise StepFailed(f"the check failed: {await errors_on(page)}")
        return text

    def geojson_check() -> None:
        summary = run(check_source("the uploaded GeoJSON", ("park_name", "kind", "area_ha"),
                                   "Point", PARKS))
        print(f"  check summary: {summary}")
        if run(page.input_value("#id_opt_source")) != found["parks_source"]:
            raise StepFailed("the check lost the uploaded file's path")

    walk.step("geojson-check", geojson_check, needs=("geojson-upload",))

    def geojson_save() -> None:
        async def go() -> None:
            await choose(page, "select#id_display_field", lambda v, label: v == "park_name",
                         "the display field chosen among the detected fields")
            await submit(page, 'input[name="_save"]', "the Save button")
            await need(page, ".messagelist .success",
                       f"the saved message ({await errors_on(page)})")

        run(go())
        dataset = Dataset.objects.select_related("provider").get(dataset_id="walk_parks")
        assert dataset.provider.name == "geojson"
        assert dataset.options == {"source": found["parks_source"]}, \
            f"saved options: {dataset.options} (unset options must be left out)"
        assert dataset.display_field == "park_name"

    walk.step("geojson-save", geojson_save, needs=("geojson-check",))

    # 3. A CSV dataset by path, picked in the data folder's browser --------------------------
    def csv_pick() -> None:
        async def go() -> None:
            await open_add_form(("CSV",))
            await page.fill("#id_dataset_id", "walk_trees")
            await page.fill("#id_name", "Street trees")
            shown = await need(page, ".koop-data-dir", "the data folder's path")
            folder = (await shown.inner_text()).strip()
            if folder != str(Path(koop_settings.DATA_DIR)):
                raise StepFailed(f".koop-data-dir shows {folder!r}, "
                                 f"not {koop_settings.DATA_DIR}")
            await (await need(page, "button.koop-browse", "the Browse button")).click()
            target = 'a.koop-file[data-path="walk/trees.csv"]'
            try:
                sub = await need(page, 'a.koop-folder[data-path^="walk"], ' + target,
                                 "the data folder's listing (folder walk/ or its file)")
            except StepFailed as exc:
                listing = await page.eval_on_selector_all(
                    ".koop-browser", "nodes => nodes.map(n => n.innerText.trim())")
                raise StepFailed(f"{exc}; the listing shows {listing}") from None
            if not await page.locator(target).is_visible():
                await sub.click()
            await (await need(page, target, "walk/trees.csv in the listing")).click()
            picked = await page.input_value("#id_opt_source")
            if picked != "walk/trees.csv":
                raise StepFailed(f"picking the file put {picked!r} in #id_opt_source")

        run(go())

    walk.step("csv-pick", csv_pick, needs=("login",))

    def csv_check() -> None:
        summary = run(check_source("the CSV", ("tree_id", "species", "height_m"), "Point",
                                   None), timeout=240)
        print(f"  check summary: {summary}")

    walk.step("csv-check", csv_check, needs=("csv-pick",))

    def csv_save() -> None:
        async def go() -> None:
            await choose(page, "select#id_id_field", lambda v, label: v == "tree_id",
                         "the id field chosen among the detected fields")
            await choose(page, "select#id_display_field", lambda v, label: v == "species",
                         "the display field chosen among the detected fields")
            await submit(page, 'input[name="_save"]', "the Save button")
            await need(page, ".messagelist .success",
                       f"the saved message ({await errors_on(page)})")

        run(go())
        dataset = Dataset.objects.select_related("provider").get(dataset_id="walk_trees")
        assert dataset.provider.name == "csv"
        assert dataset.options.get("source") == "walk/trees.csv", dataset.options
        assert None not in dataset.options.values(), f"unset options saved: {dataset.options}"
        assert (dataset.id_field, dataset.display_field) == ("tree_id", "species")

    walk.step("csv-save", csv_save, needs=("csv-check",))

    # Datasets a failed step should have added: made here so that the later steps still run.
    def ensure(dataset_id: str, provider: str, source: str, **fields: Any) -> Dataset:
        existing = Dataset.objects.filter(dataset_id=dataset_id).first()
        if existing is not None:
            return existing
        print(f"  (made {provider}/{dataset_id} through the ORM: the admin did not)")
        dataset = make_dataset(provider, dataset_id, options={"source": source}, **fields)
        # Cached as a save after a check leaves it: the page's preview then causes no refresh.
        data.refresh(dataset, trigger="admin")
        dataset.refresh_from_db()
        return dataset

    if "parks_source" not in found:  # the upload failed: the file as if copied by hand
        shutil.copy(upload, data_dir / upload.name)
    parks = ensure("walk_parks", "geojson", found.get("parks_source", upload.name),
                   display_field="park_name")
    trees = ensure("walk_trees", "csv", "walk/trees.csv")

    def list_fits() -> None:
        async def go() -> int:
            await page.goto(f"{origin}/admin/koop_app/dataset/")
            for name in ("walk_parks", "walk_trees"):
                await need(page, f'#result_list tbody tr:has-text("{name}")',
                           f"{name} in the datasets' list", state="attached")
            # The table scrolls in its own box (.results): the page's width does not tell.
            return await page.evaluate("""() => {
                const table = document.querySelector('#result_list');
                const box = table.closest('.results') || table.parentElement;
                return {page: document.documentElement.scrollWidth,
                        table: Math.ceil(table.getBoundingClientRect().right),
                        hidden: box.scrollWidth - box.clientWidth};
            }""")

        width = run(go())
        assert width["page"] <= VIEWPORT["width"] and width["table"] <= VIEWPORT["width"] \
            and width["hidden"] <= 0, f"the datasets' list does not fit 1366 px: {width}"

    walk.step("list-fits-1366px", list_fits, needs=("login",))

    # 4. Refresh now, queued for the worker, with its progress live --------------------------
    def refresh_progress() -> None:
        async def go() -> list[str]:
            await page.goto(change_url(trees))
            try:
                await submit(page, "button#koop-refresh-now", "the Refresh now button")
            except StepFailed as exc:  # the list's action still shows the progress
                walk.soft(f"{exc}; refreshed with the list's action instead")
                await page.goto(f"{origin}/admin/koop_app/dataset/")
                await page.check(f'input.action-select[value="{trees.pk}"]')
                await page.select_option("select[name=action]", "refresh_now")
                await submit(page, 'button[name="index"]', "the list's Go button")
            await need(page, ".messagelist .success, .messagelist .info",
                       f"the queued message ({await errors_on(page)})")
            try:
                await page.wait_for_function(
                    "(pattern) => (window.__koopProgressSeen || [])"
                    ".some(text => new RegExp(pattern, 'i').test(text))",
                    arg=RUNNING.pattern, timeout=60_000, polling=100)
            except PlaywrightTimeout:
                seen = await page.evaluate("window.__koopProgressSeen")
                raise StepFailed(f".koop-progress never showed a running refresh; it showed "
                                 f"{seen}") from None
            return await page.evaluate("window.__koopProgressSeen")

        seen = run(go())
        found["progress"] = seen
        print(f"  progress seen: {seen}")

    walk.step("refresh-progress", refresh_progress, needs=("login",))

    def refresh_done() -> None:
        # The worker's refresh (its node is live@<host>), not one the web process ran.
        by_worker = RefreshLog.objects.filter(dataset=trees, trigger="admin",
                                              worker__startswith="live@")
        try:
            wait_for(lambda: by_worker.filter(state=RefreshLog.DONE).exists(), timeout=180,
                     what="the Celery worker to finish the queued refresh")
        except AssertionError:
            seen = list(RefreshLog.objects.filter(dataset=trees).values_list(
                "trigger", "worker", "state", "duration_ms"))
            raise StepFailed(f"no refresh by the worker finished; the refreshes: {seen}"
                             ) from None
        # The page stayed open meanwhile: all that its progress showed, up to the end.
        run(page.wait_for_timeout(2000))
        print(f"  progress shown: {run(page.evaluate('window.__koopProgressSeen'))}")
        log = by_worker.latest("started")
        assert log.ok, f"the refresh failed: {log.error}"
        assert log.process != process_name(), "the refresh ran in the web process, not queued"
        assert log.features == TREES and log.duration_ms > 0, (log.features, log.duration_ms)
        print(f"  the worker refreshed {log.features} features in {log.duration_ms} ms")
        trees.refresh_from_db()
        assert trees.feature_count == TREES and trees.version and not trees.last_error

        async def go() -> tuple[str, list[str]]:
            await page.goto(change_url(trees))
            await page.wait_for_timeout(1500)  # progress.js's first poll
            texts = await page.eval_on_selector_all(
                ".koop-progress", "nodes => nodes.map(n => n.textContent.trim())")
            return plain_digits(await page.inner_text("body")), texts

        body, progress_now = run(go())
        assert str(TREES) in body, f"the page does not show the {TREES} cached features"
        assert not any(RUNNING.search(t) for t in progress_now), \
            f"the page still shows a running refresh: {progress_now}"

    walk.step("refresh-done", refresh_done, needs=("refresh-progress",))

    # 5. The embedded preview map draws the GeoJSON -------------------------------------------
    def preview_map() -> None:
        async def top_level() -> int:
            """The old page's "map preview" link, opened in the page itself."""
            link = await need(page, 'a[href*="/preview/"]', "a map preview link",
                              state="attached")
            await page.goto(origin + (await link.get_attribute("href") or ""))
            await page.wait_for_function(MAP_READY, timeout=60_000)
            return await page.evaluate(DRAWN)

        async def go() -> int:
            await page.goto(change_url(parks))
            try:
                frame_element = await need(page, "iframe#koop-preview-map", "the preview map",
                                           state="attached")
            except StepFailed as exc:
                walk.soft(f"{exc}; opened the map preview link instead")
                return await top_level()
            await frame_element.scroll_into_view_if_needed()
            frame = await frame_element.content_frame()
            if frame is None:
                raise StepFailed("iframe#koop-preview-map has no document")
            try:
                await frame.wait_for_function(MAP_READY, timeout=60_000)
            except PlaywrightTimeout:
                raise StepFailed(f"the preview in the frame ({frame.url}) never got ready"
                                 ) from None
            state = await frame.evaluate("window.koopPreview")
            if state.get("errors"):
                raise StepFailed(f"the preview reports errors: {state['errors']}")
            drawn = await frame.evaluate(DRAWN)
            box = await frame_element.bounding_box()
            if not box or box["width"] < 300 or box["height"] < 200:
                raise StepFailed(f"the preview frame is too small to see: {box}")
            # The frame alone, for a look at the map.
            framed = screenshots / "preview-map-frame.png"
            await frame_element.screenshot(path=str(framed))
            print(f"  the frame alone: {framed}")
            return drawn

        drawn = run(go())
        assert drawn == PARKS, f"the preview drew {drawn} features of {PARKS}"

    walk.step("preview-map", preview_map, needs=("login",))

    # 6. Copy the absolute FeatureServer URL ---------------------------------------------------
    def copy_url() -> None:
        async def go() -> tuple[str, str, str, str]:
            await page.goto(change_url(parks))
            field_ = await need(page, "input#koop-feature-server-url",
                                "the absolute FeatureServer URL")
            url = await field_.input_value()
            agol = await need(page, "a#koop-open-agol", "Open in ArcGIS Online",
                              state="attached")
            agol_href = await agol.get_attribute("href") or ""
            await page.bring_to_front()
            await (await need(page, "button#koop-copy-url", "the copy button")).click()
            status = await need(page, "#koop-copy-status", "the copy status")
            await page.wait_for_function(
                "document.querySelector('#koop-copy-status').textContent.includes('Copied')",
                timeout=WAIT)
            copied = await page.evaluate("navigator.clipboard.readText()")
            return url, copied, agol_href, await status.inner_text()

        url, copied, agol_href, status = run(go())
        print(f"  copied: {copied!r} ({status.strip()})")
        assert url.startswith(origin + "/"), f"not an absolute URL of this server: {url!r}"
        assert "/rest/services/walk_parks/FeatureServer" in url, url
        assert copied == url, f"the clipboard holds {copied!r}, not {url!r}"
        with urllib.request.urlopen(f"{url}?f=json", timeout=30) as answer:
            service = orjson.loads(answer.read())
        assert [layer["id"] for layer in service.get("layers", [])] == [0], service
        target = urlsplit(agol_href)
        assert target.scheme == "https" and target.hostname.endswith("arcgis.com"), agol_href
        assert parse_qs(target.query).get("url", [""])[0].startswith(url), agol_href

    walk.step("copy-url", copy_url, needs=("login",))

    # 7. The services directory ----------------------------------------------------------------
    def service_directory() -> None:
        async def go() -> tuple[str, str]:
            await page.goto(change_url(parks))
            link = await need(page, "a#koop-services-directory", "the services directory link",
                              state="attached")
            href = await link.get_attribute("href") or ""
            if await link.get_attribute("target") == "_blank":
                async with page.context.expect_page() as opened:
                    await link.click()
                directory = await opened.value
                await directory.wait_for_load_state()
                text, url = await directory.inner_text("body"), directory.url
                await directory.close()
                await page.goto(url)  # in the walk's page too, for its screenshot
            else:
                async with page.expect_navigation():
                    await link.click()
                text, url = await page.inner_text("body"), page.url
            return href, f"{url}\n{text}"

        href, shown = run(go())
        assert "walk_parks" in shown and "FeatureServer" in shown, shown[:500]
        assert "f=html" in href or "f=html" in shown.splitlines()[0], href

    walk.step("service-directory", service_directory, needs=("login",))

    def services_catalog() -> None:
        async def go() -> list[str]:
            listed = []
            for folder, service in (("geojson", "walk_parks"), ("csv", "walk_trees")):
                await page.goto(f"{origin}/rest/services?f=html")
                link = page.locator(f'a[href*="/rest/services/{folder}"]').first
                try:
                    await link.click(timeout=WAIT)
                except PlaywrightTimeout:
                    raise StepFailed(f"the directory does not list the folder {folder}"
                                     ) from None
                await page.wait_for_load_state()
                body = await page.inner_text("body")
                if f"{folder}/{service}" not in body:
                    raise StepFailed(f"the folder {folder} does not list {folder}/{service}: "
                                     f"{body[:300]!r}")
                listed.append(f"{folder}/{service}")
            await page.goto(f"{origin}/rest/services?f=html")
            return listed

        print(f"  listed: {run(go())}")

    walk.step("services-catalog", services_catalog, needs=("login",))

    # 8. A missing file is refused, with its name, and nothing is saved ------------------------
    def missing_file() -> None:
        async def go() -> tuple[str, str]:
            await open_add_form(("GeoJSON",))
            await page.fill("#id_dataset_id", "walk_missing")
            await page.fill("#id_opt_source", "walk/no-such-parks.geojson")
            await submit(page, 'button[name="_check"]', 'the "Check the source" button')
            await need(page, "section#koop-check .errornote, .errornote",
                       "the check's error message")
            panel = await page.eval_on_selector_all(
                "section#koop-check", "nodes => nodes.map(n => n.textContent.trim())")
            check_text = "; ".join([await errors_on(page), *panel])
            await submit(page, 'input[name="_save"]', "the Save button")
            await need(page, ".errornote", "the refusal of the save")
            return check_text, await errors_on(page)

        check_text, save_text = run(go())
        print(f"  check said: {check_text.strip()!r}; save said: {save_text!r}")
        assert "no-such-parks.geojson" in check_text, f"the check's message: {check_text!r}"
        assert "no-such-parks.geojson" in save_text, f"the save's messages: {save_text!r}"
        assert not Dataset.objects.filter(dataset_id="walk_missing").exists(), \
            "the dataset with a missing file was saved"
        assert "/admin/koop_app/dataset/add/" in page.url, page.url
        assert sorted(Dataset.objects.values_list("dataset_id", flat=True)) == [
            "walk_parks", "walk_trees"]

    walk.step("missing-file-refused", missing_file, needs=("login",))

    record = browser.record
    problems = list(walk.failures)
    if record.blocked:
        problems.append(f"requests off loopback (blocked): {record.blocked}")
    if record.failed:
        problems.append(f"failed requests: {record.failed}")
    if record.page_errors:
        problems.append(f"uncaught errors in the admin's pages: {record.page_errors}")
    if record.console_errors:
        problems.append(f"errors in the browser console: {record.console_errors}")
    print(f"admin walkthrough: {walk.number} steps in {time.monotonic() - started:.0f} s, "
          f"screenshots in {screenshots}")
    if problems:
        pytest.fail(f"{len(problems)} problem(s) in the admin walkthrough:\n  "
                    + "\n  ".join(problems), pytrace=False)
