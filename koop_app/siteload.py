"""Slow sockets, timed clients and the site served as `make run` serves it: tests and bench.

Everything here talks to 127.0.0.1 only.

    with ServedSite(env) as site, SlowSockets(site.port, count=50, interval=2.0):
        latency = timed_get(site.port, "/rest/info")
"""

from __future__ import annotations

import http.client
import os
import selectors
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from koop_app.testing import free_port

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"


class ServedSite:
    """``scripts/serve`` (the web server of `make run` and compose) in its own process group."""

    def __init__(self, env: dict[str, str], python: str | None = None,
                 log: Path | None = None, command: list[str] | None = None) -> None:
        """``command`` replaces scripts/serve (bench: other servers); ``{port}`` is filled in."""
        import sys

        self.env = {**os.environ, **env}
        self.python = python or sys.executable
        self.port = free_port()
        self.log = log
        self.command = command
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ServedSite:
        command = [part.replace("{port}", str(self.port)) for part in self.command or [
            str(ROOT / "scripts" / "serve"), self.python, f"{LOOPBACK}:{{port}}"]]
        if self.log:
            with open(self.log, "ab") as out:  # the child keeps its own copy of the descriptor
                self._process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=out,
                                                 stderr=subprocess.STDOUT, start_new_session=True)
        else:
            self._process = subprocess.Popen(command, cwd=ROOT, env=self.env,
                                             stdout=subprocess.DEVNULL,
                                             stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the server exited with status {self._process.returncode}")
            try:
                status, _ = get(self.port, "/health", timeout=2)
                if status in (200, 503):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("the server did not answer /health in time")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        self._process = None

    def __enter__(self) -> ServedSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """One GET on a new connection: (status, body)."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def timed_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes, float]:
    started = time.perf_counter()
    status, body = get(port, path, timeout)
    return status, body, time.perf_counter() - started


class SlowSockets:
    """``count`` sockets that hold the server without ever finishing a request.

    A third send half a request head and stop, a third connect and send nothing, a third send
    one more header line every ``interval`` seconds. A socket the server closes is opened
    again at once, so the pressure stays at ``count`` for as long as this runs.
    """

    KINDS = ("half-head", "idle", "trickle")

    def __init__(self, port: int, count: int = 50, interval: float = 10.0) -> None:
        self.port = port
        self.count = count
        self.interval = interval
        self.reopened = 0
        self.open_now = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-sockets", daemon=True)

    def _open(self, kind: str) -> socket.socket:
        sock = socket.create_connection((LOOPBACK, self.port), timeout=5)
        if kind != "idle":
            sock.sendall(b"GET /rest/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n")
        sock.setblocking(False)
        return sock

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        kinds = [self.KINDS[i % len(self.KINDS)] for i in range(self.count)]
        for kind in kinds:
            selector.register(self._open(kind), selectors.EVENT_READ, kind)
        self.open_now = self.count
        next_line = time.monotonic() + self.interval
        while not self._stop.is_set():
            for key, _ in selector.select(timeout=0.2):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    if sock.recv(65536):
                        continue  # an answer (e.g. 408/400) before the close: keep reading
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                selector.unregister(sock)
                sock.close()
                self.reopened += 1
                selector.register(self._open(key.data), selectors.EVENT_READ, key.data)
            if time.monotonic() >= next_line:
                next_line += self.interval
                for key in list(selector.get_map().values()):
                    if key.data == "trickle":
                        try:
                            key.fileobj.send(b"X-More: 1\r\n")  # type: ignore[union-attr]
                        except OSError:
                            pass  # closed by the server: the read side reopens it
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        selector.close()
        self.open_now = 0

    def start(self) -> SlowSockets:
        self._thread.start()
        deadline = time.monotonic() + 10
        while self.open_now < self.count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def __enter__(self) -> SlowSockets:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class LoadReport:
    """What the clients saw: request count, errors (first few kept), latencies."""

    requests: int = 0
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, latency: float, error: str | None) -> None:
        with self.lock:
            self.requests += 1
            self.latencies.append(latency)
            if error:
                self.error_count += 1
                if len(self.errors) < 20:
                    self.errors.append(error)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0.0

    def summary(self) -> dict[str, Any]:
        return {"requests": self.requests, "errors": self.error_count,
                "p50_ms": round(self.percentile(0.5) * 1000, 1),
                "p99_ms": round(self.percentile(0.99) * 1000, 1),
                "max_ms": round(max(self.latencies, default=0) * 1000, 1)}


def answer_error(status: int, body: bytes) -> str | None:
    """Why an answer counts as an error: not 200, or an ArcGIS error body."""
    if status != 200:
        return f"HTTP {status}: {body[:200]!r}"
    if body.startswith(b'{"error"'):
        return f"error body: {body[:200]!r}"
    return None


def run_clients(port: int, paths: Callable[[int], Iterable[str]], clients: int,
                seconds: float, timeout: float = 10.0) -> LoadReport:
    """``clients`` threads, each GETting its ``paths(i)`` in turn for ``seconds``."""
    report = LoadReport()
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        while time.monotonic() < deadline:
            for path in paths(index):
                if time.monotonic() >= deadline:
                    return
                started = time.perf_counter()
                try:
                    status, body = get(port, path, timeout)
                    error = answer_error(status, body)
                except OSError as exc:
                    error = f"{path}: {type(exc).__name__}: {exc}"
                report.add(time.perf_counter() - started, error and f"{path}: {error}")

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return report


def arcgis_paths(index: int) -> list[str]:
    """A round of the queries ArcGIS clients send, over the demo datasets (koop_demo)."""
    places = "/geojson/rest/services/places/FeatureServer/0"
    regions = "/geojson/rest/services/regions/FeatureServer/0"
    offset = (index * 37) % 1900
    stats = ('[{"statisticType":"count","onStatisticField":"OBJECTID","outStatisticFieldName":'
             '"n"},{"statisticType":"avg","onStatisticField":"visitors",'
             '"outStatisticFieldName":"v"}]')
    from urllib.parse import quote

    return [
        "/rest/info?f=json",
        f"{places}?f=json",
        f"{places}/query?where=visitors%3E{index % 500}&outFields=*&f=json"
        f"&resultOffset={offset}&resultRecordCount=100&orderByFields=OBJECTID",
        f"{places}/query?where=1%3D1&geometry=-100,20,-60,50&geometryType=esriGeometryEnvelope"
        "&spatialRel=esriSpatialRelIntersects&inSR=4326&outSR=102100&f=json",
        f"{places}/query?where=category%3D%27Station%27&returnCountOnly=true&f=json",
        f"{places}/query?where=1%3D1&groupByFieldsForStatistics=category"
        f"&outStatistics={quote(stats)}&f=json",
        f"{regions}/query?where=1%3D1&outFields=name,population&resultRecordCount=50&f=geojson",
        f"{regions}/query?where=population%3E100000&returnIdsOnly=true&f=json",
    ]


def run_load(site: ServedSite, redis: Any, clients: int, seconds: float,
             slow_interval: float) -> dict[str, Any]:
    """Clients on :func:`arcgis_paths` beside 50 slow sockets for ``seconds``; a third of the
    way in the demo datasets are refreshed (koop_refresh, another process), and half-way the
    Redis ``redis`` (a :class:`koop_app.testing.RedisServer`) is stopped and started again."""
    events: list[str] = []

    def disturb() -> None:
        time.sleep(seconds / 3)
        subprocess.run([site.python, "manage.py", "koop_refresh", "geojson/places",
                        "geojson/regions"], cwd=ROOT, env=site.env, check=True,
                       stdout=subprocess.DEVNULL)
        events.append("refreshed")
        time.sleep(seconds / 6)
        redis.stop()
        time.sleep(1)
        redis.start_on_same_port()
        events.append("redis restarted")

    for path in arcgis_paths(0):  # data loaded once, before the clock starts
        get(site.port, path, timeout=60)
    disturber = threading.Thread(target=disturb)
    with SlowSockets(site.port, count=50, interval=slow_interval) as slow:
        disturber.start()
        report = run_clients(site.port, arcgis_paths, clients=clients, seconds=seconds)
        disturber.join()
        held = slow.open_now
    return {"events": events, "clients": clients, "seconds": seconds,
            "slow_sockets_held": held, **report.summary(), "first_errors": report.errors}
