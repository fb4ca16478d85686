"""Generated requests over every GeoServices route: never a crash, a leak or a slow answer.

Hypothesis builds requests from the strategies in ``strategies.py`` (``where``, geometries,
spatial references, statistics, numbers, paging, ``f``/``callback``) and sends them as GET or
POST in several encodings (forms, multipart, JSON, junk bodies, raw percent-encoding with
invalid UTF-8). Every answer must have a status below 500, no code-500 body, no HTML, no
traceback, path, environment value or file content, and come within 5 s; after the run the
cached copies (version and features) are unchanged.

``KOOP_FUZZ_EXAMPLES`` sets the examples per unit of weight (``make test``: 300, about 3,000
requests; ``make fuzz``: 1,000, about 12,000); ``KOOP_FUZZ_SUMMARY`` names a file for the
run's summary (requests, per-route counts, max and p99 times, failures).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_from_bytes, urlencode

import orjson
import pytest
from django.conf import settings as django_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from koop_app.conf import koop_settings
from koop_app.data import cache as data_cache
from koop_app.models import Dataset
from tests.conftest import collection, feature, point
from tests.crash_guard import asks_html, problems_of
from tests.outputs.geoservices import strategies as gen
from tests.providers.test_records_provider import FakeAPI

EXAMPLES = int(os.environ.get("KOOP_FUZZ_EXAMPLES", "300"))
SUMMARY = os.environ.get("KOOP_FUZZ_SUMMARY", "")
SLOW_SECONDS = 5.0
SERVICES = "/geojson/rest/services"
# (dataset, layer id) pairs that exist, and layer segments that do not.
LAYERS = [("things", "0"), ("shapes", "0"), ("lines", "0"), ("sites", "2"), ("sites", "4"),
          ("sites", "7"), ("api", "0")]
# "api" is the pass-through records provider over a fake paged API on 127.0.0.1.
SERVICE_PATHS = {"api": "/records/rest/services/api/FeatureServer"}


def service_path(name: str) -> str:
    return SERVICE_PATHS.get(name, f"{SERVICES}/{name}/FeatureServer")
ODD_LAYERS = ["1", "-1", "99", "x", "²", "0x0", "00", " 0", "9" * 5000, "%ff", "0.0"]


def fuzz(weight: int) -> Any:
    return settings(max_examples=EXAMPLES * weight, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


@dataclass
class RunStats:
    """What the generated requests did, for the summary."""

    routes: Counter[str] = field(default_factory=Counter)
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    outcomes: Counter[str] = field(default_factory=Counter)
    slowest: list[tuple[float, str, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, route: str, seconds: float, outcome: str, request: str) -> None:
        with self.lock:
            self.routes[route] += 1
            self.times[route].append(seconds)
            self.outcomes[outcome] += 1
            self.slowest = sorted([*self.slowest, (seconds, route, request[:300])],
                                  reverse=True)[:8]

    def summary(self) -> dict[str, Any]:
        every = sorted(t for times in self.times.values() for t in times)

        def p99(values: list[float]) -> float:
            return values[min(len(values) - 1, int(len(values) * 0.99))] if values else 0.0

        return {
            "requests": sum(self.routes.values()),
            "examples_per_weight": EXAMPLES,
            "routes": {route: {"requests": count,
                               "max_ms": round(max(self.times[route]) * 1000, 1),
                               "p99_ms": round(p99(sorted(self.times[route])) * 1000, 1)}
                       for route, count in sorted(self.routes.items())},
            "max_ms": round(every[-1] * 1000, 1) if every else 0.0,
            "p99_ms": round(p99(every) * 1000, 1),
            "outcomes": dict(self.outcomes.most_common()),
            "slowest": [{"ms": round(seconds * 1000, 1), "route": route, "request": request}
                        for seconds, route, request in self.slowest],
            "failures": len(self.failures),
        }


STATS = RunStats()


@pytest.fixture(scope="module", autouse=True)
def _summary() -> Any:
    yield
    summary = STATS.summary()
    if SUMMARY:
        Path(SUMMARY).write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))


def things() -> dict[str, Any]:
    return collection([
        feature({"name": f"Thing {i}", "size": i, "ratio": i / 4,
                 "kind": "odd" if i % 2 else "even", "seen": f"2024-01-{i % 28 + 1:02d}T00:00:00Z",
                 "ok": i % 3 == 0, "score": None if i % 5 == 0 else i * 1.5},
                point(-100 + i, 40 + i / 10))
        for i in range(1, 41)
    ], metadata={"name": "Things", "timeInfo": {"startTimeField": "seen"}})


def shapes() -> dict[str, Any]:
    holed = {"type": "Polygon", "coordinates": [
        [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]], [[4, 4], [4, 6], [6, 6], [6, 4], [4, 4]]]}
    square = {"type": "Polygon", "coordinates": [[[20, 0], [21, 0], [21, 1], [20, 1], [20, 0]]]}
    return collection([feature({"label": "holed", "area": 96}, holed),
                       feature({"label": "small", "area": 1}, square)])


def lines() -> dict[str, Any]:
    return collection([
        feature({"label": "diagonal"}, {"type": "LineString", "coordinates": [[0, 0], [10, 10]]}),
        feature({"label": "far"}, {"type": "LineString", "coordinates": [[50, 50], [60, 50]]})])


def sites() -> dict[str, Any]:
    relationship = {"id": 3, "name": "inspections", "relatedTableId": 7, "keyField": "code",
                    "relatedKeyField": "site"}
    return {"layers": [
        collection([feature({"code": c, "name": c * 2}, point(i, i))
                    for i, c in enumerate("ABC", 1)],
                   metadata={"id": 2, "name": "Sites", "relationships": [relationship]}),
        collection([feature({"road": "R1"}, {"type": "LineString",
                                              "coordinates": [[0, 0], [5, 5]]})],
                   metadata={"id": 4, "name": "Roads"})],
        "tables": [collection([feature({"site": s, "score": n})
                               for s, n in (("A", 5), ("A", 7), ("B", 9), ("Z", 1))],
                              metadata={"id": 7, "name": "Inspections"})]}


@dataclass
class World:
    """The datasets under test and the strings no answer may contain."""

    forbidden: list[bytes] = field(repr=False)  # never print environment values
    snapshot: dict[str, Any] = field(default_factory=dict)


def _snapshot(client: Any) -> dict[str, Any]:
    """Each dataset's cached version and a digest of every feature of every layer."""
    state: dict[str, Any] = {}
    for dataset in Dataset.objects.all():
        pointer = data_cache.get_pointer(dataset.cache_key) if dataset.cache_key else None
        state[dataset.dataset_id] = (pointer.version if pointer else None,
                                     pointer.count if pointer else None)
    for name, layer in LAYERS:
        response = client.get(f"{service_path(name)}/{layer}/query",
                              {"where": "1=1", "outFields": "*", "orderByFields": "OBJECTID",
                               "resultRecordCount": "1000"})
        state[f"{name}/{layer}"] = hashlib.sha256(response.content).hexdigest()
    return state


@pytest.fixture
def world(make_dataset, client, monkeypatch, source_server) -> Any:
    for name, document in (("things", things()), ("shapes", shapes()), ("lines", lines()),
                           ("sites", sites())):
        make_dataset("geojson", name, document)
    make_dataset("records", "api", options={
        "url": source_server.route("/fuzz-records", body=FakeAPI()), "page_size": 10})
    canary = secrets.token_hex(16)
    monkeypatch.setenv("KOOP_FUZZ_CANARY", canary)
    (Path(koop_settings.DATA_DIR).parent / "canary.txt").write_text(canary)
    for dataset in Dataset.objects.all():  # fetch and cache each one before the snapshot
        client.get(service_path(dataset.dataset_id))
    forbidden = [canary, str(django_settings.SECRET_KEY), str(django_settings.BASE_DIR),
                 str(koop_settings.DATA_DIR), os.environ.get("KOOP_VAR_DIR", "/nonexistent"),
                 "site-packages", 'File "', "Traceback", "root:x:0:0"]
    forbidden += [value for value in os.environ.values() if len(value) >= 16]
    state = World([text.encode() for text in forbidden if text], _snapshot(client))
    yield state
    assert _snapshot(client) == state.snapshot, "the cached copies changed"


def _outcome(response: Any, body: bytes) -> str:
    """``HTTP 200 answer``, ``code 400`` ...: what kind of answer it was, for the summary."""
    if response.status_code != 200 or b'"error"' not in body[:200]:
        return f"HTTP {response.status_code} answer"
    start = body.find(b"{")
    try:
        error = orjson.loads(body[start:].rstrip(b");"))["error"]
        return f"code {error['code']}"
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "HTTP 200 answer"


def check(world: World, route: str, path: str, response: Any, seconds: float,
          sent: Any = "") -> None:
    body = b"" if getattr(response, "streaming", False) else response.content
    STATS.record(route, seconds, _outcome(response, body), f"{path} {sent!r}")
    request = getattr(response, "wsgi_request", None)
    problems = problems_of(path, response.status_code, response.get("Content-Type", ""), body,
                           html_asked=request is not None and asks_html(request))
    if seconds > SLOW_SECONDS:
        problems.append(f"{path}: {seconds:.1f} s")
    problems += [f"{path}: the body holds {text[:40]!r}" for text in world.forbidden
                 if text in body]
    if problems:
        STATS.failures.append(problems[0])
    assert not problems, problems


# --- how a request is sent ------------------------------------------------------------------

CHARSETS = ["utf-8", "UTF-8", "latin-1", "utf-16", "ascii", "bogus", "utf-8; boundary=x", ""]
JUNK_TYPES = ["multipart/form-data", "multipart/form-data; boundary=xyz", "text/plain",
              "application/octet-stream", "", "application/x-www-form-urlencoded",
              "application/json", "multipart/mixed; boundary=", "text/html; charset=utf-16"]


def send(client: Any, path: str, params: dict[str, str], how: str, extra: Any = None) -> Any:
    if how == "get":
        return client.get(path, params)
    if how == "post-form":
        return client.generic("POST", path, urlencode(params),
                              "application/x-www-form-urlencoded")
    if how == "post-multipart":
        return client.post(path, params)
    if how == "post-charset":
        codec = extra.split(";")[0] or "utf-8"
        try:
            body = urlencode(params).encode(codec, errors="replace")
        except LookupError:
            body = urlencode(params).encode()
        content_type = "application/x-www-form-urlencoded" + (f"; charset={extra}" if extra
                                                              else "")
        return client.generic("POST", path, body, content_type)
    if how == "post-json":
        return client.generic("POST", path, orjson.dumps(params), "application/json")
    if how == "method":
        return client.generic(extra, path + "?" + urlencode(params))
    if how == "post-junk":
        content_type, body = extra
        return client.generic("POST", path + "?" + urlencode(params), body, content_type)
    raise AssertionError(how)


how_to_send = st.one_of(
    st.tuples(st.sampled_from(["get", "get", "post-form", "post-multipart", "post-json"]),
              st.none()),
    st.tuples(st.just("post-charset"), st.sampled_from(CHARSETS)),
    st.tuples(st.just("method"), st.sampled_from(["HEAD", "OPTIONS", "PUT", "DELETE", "PATCH",
                                                  "TRACE", "PROPFIND"])),
    st.tuples(st.just("post-junk"), st.tuples(st.sampled_from(JUNK_TYPES),
                                              st.binary(max_size=200))),
)


def run(client: Any, world: World, route: str, path: str, params: dict[str, str],
        how: tuple[str, Any]) -> None:
    started = time.perf_counter()
    response = send(client, path, params, *how)
    check(world, route, path, response, time.perf_counter() - started, params)


layer_route = st.one_of(st.sampled_from(LAYERS), st.sampled_from(LAYERS), st.sampled_from(LAYERS),
                        st.tuples(st.sampled_from(["things", "sites", "api", "nosuch"]),
                                  st.sampled_from(ODD_LAYERS)))


def layer_path(name: str, layer: str, tail: str = "") -> str:
    return f"{service_path(name)}/{quote(layer, safe='%')}{tail}"


# --- the routes -----------------------------------------------------------------------------


@pytest.mark.django_db
@fuzz(4)
@given(target=layer_route, params=gen.params_from(gen.QUERY_PARAMS), how=how_to_send)
def test_query(client, world, target, params, how):
    run(client, world, "query", layer_path(*target, "/query"), params, how)


@pytest.mark.django_db
@fuzz(1)
@given(target=layer_route, params=gen.params_from(gen.RENDERER_PARAMS), how=how_to_send)
def test_generate_renderer(client, world, target, params, how):
    run(client, world, "generateRenderer", layer_path(*target, "/generateRenderer"), params,
        how)


@pytest.mark.django_db
@fuzz(1)
@given(target=st.one_of(st.just(("sites", "2")), layer_route),
       params=gen.params_from(gen.RELATED_PARAMS), how=how_to_send)
def test_query_related_records(client, world, target, params, how):
    run(client, world, "queryRelatedRecords", layer_path(*target, "/queryRelatedRecords"),
        params, how)


METADATA_ROUTES = {
    "rest/info": lambda name, layer, oid: "/rest/info",
    "rest/services": lambda name, layer, oid: "/rest/services",
    "provider info": lambda name, layer, oid: "/geojson/rest/info",
    "service": lambda name, layer, oid: service_path(name),
    "layers": lambda name, layer, oid: f"{service_path(name)}/layers",
    "layer": lambda name, layer, oid: layer_path(name, layer),
    "layer info": lambda name, layer, oid: layer_path(name, layer, "/info"),
    "feature": lambda name, layer, oid: layer_path(name, layer, f"/{oid}"),
    "queryDomains": lambda name, layer, oid: f"{service_path(name)}/queryDomains",
    "edits": lambda name, layer, oid: layer_path(name, layer, "/applyEdits"),
    "unknown": lambda name, layer, oid: layer_path(name, layer, "/" + quote(oid, safe="")),
}


@pytest.mark.django_db
@fuzz(2)
@given(route=st.sampled_from(sorted(METADATA_ROUTES)), target=layer_route,
       oid=st.one_of(st.integers(min_value=-3, max_value=60).map(str), gen.number_text,
                     gen.junk),
       params=gen.params_from(gen.BASIC_PARAMS), how=how_to_send)
def test_metadata_routes(client, world, route, target, oid, params, how):
    if route == "feature" and not oid.lstrip("-").isdigit():
        route = "unknown"
    run(client, world, route, METADATA_ROUTES[route](*target, oid), params, how)


raw_piece = st.one_of(
    st.binary(max_size=30).map(lambda b: quote_from_bytes(b, safe="")),
    st.sampled_from(["%ff", "%", "%zz", "%c3%28", "%00", "%u0041", "%e2%82", "+", "&&", "==",
                     "%2526", "%ef%bf%bf", "%ed%a0%80"]),
    st.text(max_size=10).map(lambda t: quote(t, safe="")),
)
raw_query = st.lists(st.tuples(st.sampled_from(sorted(gen.QUERY_PARAMS)) | raw_piece,
                               st.lists(raw_piece, max_size=4).map("".join)),
                     max_size=8).map(lambda items: "&".join(f"{k}={v}" for k, v in items))


@pytest.mark.django_db
@fuzz(2)
@given(target=layer_route, query=raw_query, method=st.sampled_from(["GET", "POST"]),
       body_is_query=st.booleans())
def test_raw_encodings(client, world, target, query, method, body_is_query):
    """Percent-encoding as it comes: invalid UTF-8, stray ``%``, overlong and surrogate bytes."""
    path = layer_path(*target, "/query")
    started = time.perf_counter()
    if method == "POST" and body_is_query:
        response = client.generic("POST", path, query.encode("latin-1", errors="replace"),
                                  "application/x-www-form-urlencoded")
    else:
        response = client.generic(method, f"{path}?{query}")
    check(world, "query (raw encoding)", path, response, time.perf_counter() - started, query)
