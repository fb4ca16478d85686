"""Headless Chromium running the ArcGIS Maps SDK for JavaScript test page, loopback only.

The page (``arcgis_js/page.js``) is bundled with esbuild from the pinned ``@arcgis/core`` into a
cache folder keyed by the lockfile and the page sources, served with the SDK's assets from a
static server on 127.0.0.1, and driven through Playwright with Debian's chromium (never a
downloaded browser). Every request the page makes is recorded; any request to a host other
than loopback is aborted and recorded as blocked, and the fixtures fail the test on it.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
PAGE_DIR = Path(__file__).parent / "arcgis_js"
# Leaflet and Esri Leaflet as they ship (UMD files in node_modules/*/dist): served unbundled.
LEAFLET_DIR = Path(__file__).parent / "esri_leaflet"
NODE_MODULES = PAGE_DIR / "node_modules"
BUILD_ROOT = PAGE_DIR / "build"
PAGE_SOURCES = ("package-lock.json", "page.js", "index.html")
CHROMIUM = os.environ.get("KOOP_TEST_CHROMIUM", "/usr/bin/chromium")
LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    # No name resolves: a request that slips past the interceptor cannot leave the machine.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
    # MapView draws with WebGL2; without a GPU that is SwiftShader, which Chromium now only
    # uses when asked.
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]


def _sources_key() -> str:
    digest = hashlib.sha256()
    for name in PAGE_SOURCES:
        digest.update(name.encode() + b"\0" + (PAGE_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def ensure_node_modules(folder: Path = PAGE_DIR) -> None:
    """``npm ci`` when node_modules is missing or was installed from another lockfile."""
    subprocess.run([str(REPO / "scripts" / "ensure-npm"), str(folder)], check=True,
                   timeout=600)


def build_page() -> Path:
    """The bundled page folder, built once per lockfile and page sources."""
    ensure_node_modules()
    target = BUILD_ROOT / _sources_key()
    if (target / "index.html").exists():
        return target
    BUILD_ROOT.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="staging-", dir=BUILD_ROOT))
    try:
        subprocess.run([str(NODE_MODULES / ".bin" / "esbuild"), "page.js", "--bundle",
                        "--format=esm", "--splitting", "--target=es2022",
                        "--log-level=warning", f"--outdir={staging}"],
                       cwd=PAGE_DIR, check=True, timeout=300)
        shutil.copy(PAGE_DIR / "index.html", staging / "index.html")
        for old in BUILD_ROOT.iterdir():  # builds of older sources
            if not old.name.startswith("staging-"):
                shutil.rmtree(old, ignore_errors=True)
        try:
            staging.rename(target)
        except OSError:  # another run built the same sources at the same time
            if not (target / "index.html").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


class _StaticHandler(SimpleHTTPRequestHandler):
    """The built page at /, the SDK's assets (if any) at /assets/."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map,
                      ".js": "text/javascript", ".mjs": "text/javascript",
                      ".wasm": "application/wasm", ".json": "application/json"}

    def __init__(self, *args: Any, page: Path, assets: Path | None, **kwargs: Any) -> None:
        self.page = page
        self.assets = assets
        super().__init__(*args, directory=str(page), **kwargs)

    def translate_path(self, path: str) -> str:
        route = urlsplit(path).path
        if self.assets is not None and route.startswith("/assets/"):
            base = super().translate_path("/" + route.removeprefix("/assets/"))
            return str(self.assets / Path(base).relative_to(self.page))
        return super().translate_path(path)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A page closed mid-download is expected at teardown."""


class PageServer:
    """Serves a page folder (by default with the SDK's assets) on 127.0.0.1, on its own port
    so that CORS is live."""

    def __init__(self, page: Path, assets: Path | None = NODE_MODULES / "@arcgis" / "core"
                 / "assets") -> None:
        handler = partial(_StaticHandler, page=page, assets=assets)
        self.httpd = _QuietServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> PageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def token_of(url: str, body: str | None, headers: dict[str, str]) -> str | None:
    """The token a request carries, wherever ArcGIS clients put it."""
    for header in ("authorization", "x-esri-authorization"):
        value = headers.get(header, "")
        if value.lower().startswith("bearer "):
            return value[7:].strip()
    for text in (urlsplit(url).query, body or ""):
        tokens = parse_qs(text).get("token")
        if tokens:
            return tokens[0]
    return None


@dataclass
class RecordedRequest:
    """One request the page made."""

    url: str
    method: str
    resource_type: str
    body: str | None
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def params(self) -> dict[str, str]:
        """Query string and form body merged, as our server reads them."""
        merged = {k: v[0] for k, v in parse_qs(urlsplit(self.url).query).items()}
        if self.body and "=" in self.body:
            merged.update({k: v[0] for k, v in parse_qs(self.body).items()})
        return merged

    @property
    def token(self) -> str | None:
        return token_of(self.url, self.body, self.headers)


@dataclass
class PageRecord:
    """What one page did on the network and in its console."""

    requests: list[RecordedRequest] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


def _is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return (parts.hostname or "") in LOOPBACK_HOSTS


class _LoopThread:
    """An asyncio loop in its own thread: Playwright runs there, never in the test's thread,
    whose Django code must not see a running event loop (SynchronousOnlyOperation)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                       name="playwright-loop")
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"browser call still running after {timeout} s") from None

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


class Chromium:
    """One headless Chromium (Debian's) for the session, through Playwright's driver."""

    def __init__(self) -> None:
        from playwright.async_api import async_playwright

        self.loop = _LoopThread()
        self._playwright: Any = None
        self.browser: Any = None
        try:
            self._playwright = self.loop.run(async_playwright().start())
            self.browser = self.loop.run(self._playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, chromium_sandbox=False,
                args=CHROMIUM_ARGS, timeout=60_000))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Closing the browser ends chromium; stopping the driver ends node."""
        try:
            if self.browser is not None:
                self.loop.run(self.browser.close(), timeout=30)
        finally:
            try:
                if self._playwright is not None:
                    self.loop.run(self._playwright.stop(), timeout=30)
            finally:
                self.loop.stop()

    def open(self, url: str, ready: str = "window.koopReady === true") -> ArcGISPage:
        """A fresh page at ``url``, once the JavaScript expression ``ready`` holds."""
        page = ArcGISPage(self.loop)
        page.open(self.browser, url, ready)
        return page


class ArcGISPage:
    """A test page (the SDK's, or Esri Leaflet's) in a fresh browser context; ``call`` runs a
    ``window.koop`` function."""

    def __init__(self, loop: _LoopThread) -> None:
        self.loop = loop
        self.record = PageRecord()
        self.context: Any = None
        self.page: Any = None

    def open(self, browser: Any, url: str, ready: str = "window.koopReady === true") -> None:
        try:
            self.loop.run(self._open(browser, url, ready))
        except BaseException:
            self.close()
            raise

    async def _open(self, browser: Any, url: str, ready: str) -> None:
        self.context = await browser.new_context(service_workers="block")
        await self.context.route("**/*", self._route)
        self.context.on("request", self._on_request)
        self.page = await self.context.new_page()
        self.page.on("pageerror", lambda error: self.record.page_errors.append(str(error)))
        self.page.on("console", self._on_console)
        await self.page.goto(url, wait_until="load", timeout=60_000)
        await self.page.wait_for_function(ready, timeout=60_000)

    async def _route(self, route: Any) -> None:
        if _is_loopback(route.request.url):
            await route.continue_()
        else:
            self.record.blocked.append(route.request.url)
            await route.abort("blockedbyclient")

    def _on_request(self, request: Any) -> None:
        try:
            body = request.post_data
        except (UnicodeDecodeError, ValueError):
            body = None
        self.record.requests.append(RecordedRequest(
            url=request.url, method=request.method, resource_type=request.resource_type,
            body=body, headers={k.lower(): v for k, v in request.headers.items()}))

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            self.record.console_errors.append(message.text)

    def evaluate(self, expression: str, argument: Any = None, timeout: float = 60) -> Any:
        return self.loop.run(self.page.evaluate(expression, argument), timeout=timeout)

    @property
    def version(self) -> str:
        return self.evaluate("window.koop.version")

    def call(self, function: str, *args: Any, timeout: float = 60) -> Any:
        """``await window.koop[function](...args)``: its JSON answer."""
        return self.evaluate("([name, args]) => window.koop[name](...args)",
                             [function, list(args)], timeout=timeout)

    def draw_layer(self, url: str, wkid: int, timeout: float = 60, **options: Any
                   ) -> dict[str, Any]:
        """Draw ``url`` in a MapView in ``wkid``; see ``drawLayer`` in page.js for options."""
        return self.call("drawLayer", {"url": url, "wkid": wkid, **options}, timeout=timeout)

    def query_layer(self, *specs: dict[str, Any], timeout: float = 120) -> list[dict[str, Any]]:
        """Queries on the layer kept by ``draw_layer(..., keep=True)``; see ``queryLayer`` in
        page.js: ``{"kind": "count" | "features" | "extent" | "ids", "on": "layer" | "view",
        "query": {...}}`` each, answered in order."""
        return self.call("queryLayer", list(specs), timeout=timeout)

    def sign_in(self, server_root: str, username: str, password: str,
                services: Sequence[str]) -> dict[str, Any]:
        """Sign in as an ArcGIS app does, with the IdentityManager (see ``signIn`` in page.js).

        ``server_root`` is the URL before ``/rest/services`` (``<live server>/<provider>``);
        the token is registered for each URL in ``services`` (``.../<id>/FeatureServer``).
        Answers ``{authInfo, token, expires, ssl}`` or ``{error}``.
        """
        return self.call("signIn", {"serverRoot": server_root, "username": username,
                                    "password": password, "services": list(services)})

    def register_token(self, service: str, token: str, **extra: Any) -> None:
        """Give the IdentityManager a token for ``service`` (e.g. an expired or forged one)."""
        self.call("registerToken", {"server": service, "token": token, **extra})

    def answer_challenges(self, username: str | None, password: str | None = None) -> None:
        """When the SDK asks for a sign-in (its dialog), answer with these credentials; with
        ``None``, cancel (the default)."""
        self.call("answerChallenges",
                  None if username is None else {"username": username, "password": password})

    def challenges(self) -> list[dict[str, Any]]:
        """The sign-in dialogs the SDK opened since the last call: ``{resource, server,
        answered?, error?}`` each."""
        return self.call("challenges")

    def sign_out(self) -> None:
        self.call("signOut")

    def requests_to(self, prefix: str) -> list[RecordedRequest]:
        """The requests whose URL starts with ``prefix`` (e.g. a layer's URL)."""
        return [r for r in self.record.requests if r.url.startswith(prefix)]

    def screenshot(self, name: str) -> Path:
        """The page as ``var/test-screenshots/<name>.png``: the path, to print."""
        folder = REPO / "var" / "test-screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        self.loop.run(self.page.screenshot(path=str(path)))
        return path

    def close(self) -> None:
        if self.context is not None:
            self.loop.run(self.context.close(), timeout=30)
            self.context = None


def wait_for_idle_server(timeout: float = 10.0) -> None:
    """Wait until the live server's request threads have ended.

    A closed page may leave a request running in the server; the database flush that ends a
    transactional test would pull its rows from under it (a 500 blamed on the next test).
    """
    deadline = time.monotonic() + timeout
    idle_since = None
    while time.monotonic() < deadline:
        busy = [t for t in threading.enumerate()
                if t.name.endswith("(process_request_thread)") and t.is_alive()]
        if busy:
            idle_since = None
            busy[0].join(max(0.0, min(0.5, deadline - time.monotonic())))
            continue
        # Idle twice, 0.2 s apart: a request already accepted has had time to get a thread.
        if idle_since is not None and time.monotonic() - idle_since >= 0.2:
            return
        idle_since = idle_since or time.monotonic()
        time.sleep(0.05)


def save_screenshot(data_url: str, name: str) -> Path:
    """A page's PNG data URL as ``var/test-screenshots/<name>.png``: the path, to print."""
    folder = REPO / "var" / "test-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    path.write_bytes(base64.b64decode(data_url.partition(",")[2]))
    return path


def iter_chromium() -> Iterator[Chromium]:
    """For a session fixture: start Chromium, close it (and its driver) whatever happens."""
    chromium = Chromium()
    try:
        yield chromium
    finally:
        chromium.close()
