"""Shared fixtures: a data directory, a scripted HTTP source, dataset factories."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.core.cache import cache

from koop_app import lookup
from koop_app.conf import koop_settings
from koop_app.data import reset_process_state, wait_for_refreshes
from koop_app.models import Dataset, Provider
from koop_app.testing import LoopbackGuard, RedisServer, SourceServer
from tests.crash_guard import guarded


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on 127.0.0.1 for the whole session (make test installs it)."""
    with RedisServer() as server:
        yield server


@pytest.fixture(params=["file", "redis"])
def any_cache(request, settings, redis_server_lazy):
    """Run a test over the embedded file cache and over Redis (django-redis)."""
    if request.param == "redis":
        settings.CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache",
                                       "LOCATION": redis_server_lazy().url,
                                       "OPTIONS": {"IGNORE_EXCEPTIONS": True,
                                                   "SOCKET_CONNECT_TIMEOUT": 1,
                                                   "SOCKET_TIMEOUT": 2}}}
    cache.clear()
    reset_process_state()
    return request.param


@pytest.fixture
def redis_server_lazy(request):
    """Start the session's Redis only for tests that ask for it."""
    return lambda: request.getfixturevalue("redis_server")


@pytest.fixture(scope="session")
def source_server() -> Iterator[SourceServer]:
    with SourceServer() as server:
        yield server


@pytest.fixture(autouse=True)
def loopback_only() -> Iterator[LoopbackGuard]:
    """Project rule: tests reach loopback only. A connect or DNS lookup elsewhere fails the test."""
    with LoopbackGuard() as guard:
        yield guard
    assert not guard.attempts, f"traffic off loopback attempted: {guard.attempts}"


@pytest.fixture(autouse=True)
def _no_crash(request) -> Iterator[None]:
    """Fail the test on any 5xx, code-500 body, HTML under /rest/ or traceback it caused.

    ``@pytest.mark.expected_server_error(503)`` allows the named statuses (see crash_guard).
    """
    marker = request.node.get_closest_marker("expected_server_error")
    allowed = frozenset(marker.args) if marker else frozenset()
    with guarded(allowed) as guard:
        yield
    if guard.problems:
        pytest.fail("crash check: " + "; ".join(dict.fromkeys(guard.problems)), pytrace=False)


@pytest.fixture(autouse=True)
def _clean_state() -> Iterator[None]:
    """Each test starts with an empty data cache, no hot tables and no remembered datasets."""
    cache.clear()
    reset_process_state()
    lookup.clear()
    yield
    wait_for_refreshes()
    reset_process_state()
    lookup.clear()


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """The configured KOOP['DATA_DIR'], emptied after the test."""
    path = Path(koop_settings.DATA_DIR)
    path.mkdir(parents=True, exist_ok=True)
    yield path
    for child in path.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def feature(props: dict[str, Any], geometry: dict[str, Any] | None = None,
            **extra: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": props, "geometry": geometry, **extra}


def point(x: float, y: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [x, y]}


def collection(features: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features, **extra}


def write_json(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(document))


@pytest.fixture
def make_dataset(db: Any, data_dir: Path):
    """``make_dataset("geojson", "name", document_or_None, **fields)`` writes the file too."""

    def make(provider: str, dataset_id: str, document: Any = None, *,
             suffix: str = ".geojson", **fields: Any) -> Dataset:
        rows = {p.name: p for p in Provider.sync_from_registry()}
        name = f"{dataset_id}{suffix}"
        if isinstance(document, (bytes, str)):
            (data_dir / name).write_bytes(
                document.encode() if isinstance(document, str) else document)
        elif document is not None:
            write_json(data_dir / name, document)
        options = fields.pop("options", None) or {"source": name}
        dataset = Dataset(provider=rows[provider], dataset_id=dataset_id, options=options,
                          **fields)
        dataset.full_clean()
        dataset.save()
        return dataset

    return make


def age_copy(key: str, seconds: float) -> None:
    """Make the cached copy of ``key`` as if it had been fetched ``seconds`` earlier."""
    from dataclasses import replace

    from koop_app.data import cache as data_cache

    pointer = data_cache.get_pointer(key)
    assert pointer is not None, f"no cached copy of {key}"
    cache.set(data_cache.pointer_key(key), replace(
        pointer, fetched_at=pointer.fetched_at - seconds,
        expires_at=pointer.expires_at - seconds).as_dict(), timeout=None)


def body_of(response: Any) -> bytes:
    """A response's body, streamed (large query answers) or not."""
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content
