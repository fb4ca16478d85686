"""Calling a provider: its exceptions become ours here, at the boundary."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
import requests

from koop_app.errors import (
    KoopError,
    SourceConnectError,
    SourceError,
    SourceFormatError,
    SourceTimeoutError,
)
from koop_app.logs import log_event
from koop_app.provider import Provider, ProviderRequest, SourceUnchanged

logger = logging.getLogger(__name__)
T = TypeVar("T")


def map_exception(exc: Exception) -> KoopError:
    """The most specific KoopError for an exception a provider let escape."""
    if isinstance(exc, KoopError):
        return exc
    if isinstance(exc, (requests.ConnectionError, ConnectionError)):
        # Refused, reset and connect timeouts read the same outside the log (no port probing).
        return SourceConnectError(log_message=f"could not connect: {type(exc).__name__}: {exc}")
    if isinstance(exc, (requests.Timeout, TimeoutError)):
        return SourceTimeoutError(log_message=f"timeout: {exc}")
    if isinstance(exc, (orjson.JSONDecodeError, json.JSONDecodeError, UnicodeDecodeError)):
        return SourceFormatError(log_message=f"unparsable content: {exc}")
    if isinstance(exc, (requests.RequestException, ConnectionError, OSError)):
        return SourceError(log_message=f"source failed: {exc}")
    # A plugin's own bug is a failure of the source as the client sees it (502), not ours: code
    # 500 is kept for bugs in the app itself. The traceback goes to the log (fetch.failed).
    return SourceError("The provider failed.", log_message=f"{type(exc).__name__}: {exc}")


def guarded(provider: Provider, label: str, what: str, call: Callable[[], T], *,
            catch: tuple[type[BaseException], ...] = (Exception,)) -> T:
    """``call()``; what it lets escape (of ``catch``) is raised as the most specific KoopError
    and logged as a ``fetch.failed`` event saying ``what`` failed."""
    clock = time.perf_counter()
    try:
        return call()
    except SourceUnchanged:
        raise  # not a failure: the refresh keeps its stored copy (koop_app.data.refresh)
    except catch as exc:
        error = map_exception(exc)  # type: ignore[arg-type]
        log_event(logger, logging.WARNING, "fetch.failed",
                  f"{label}: {what} failed: {error.log_message}",
                  exc_info=not isinstance(exc, KoopError), dataset=label,
                  provider=provider.name, error=type(error).__name__, status=error.status,
                  duration_ms=round((time.perf_counter() - clock) * 1000))
        if error is exc:
            raise
        raise error from exc


def fetch(provider: Provider, request: ProviderRequest, label: str, *, quiet: bool = False
          ) -> dict[str, Any]:
    """``provider.get_data(request)``, with failures raised as KoopError subclasses.

    Each call is logged as a ``fetch.done`` or ``fetch.failed`` event; ``quiet`` (pass-through
    answers, one per request) logs success at DEBUG only.
    """
    fields = {"dataset": label, "provider": provider.name}
    clock = time.perf_counter()
    data = guarded(provider, label, "get_data", lambda: provider.get_data(request))
    if not isinstance(data, dict):
        log_event(logger, logging.WARNING, "fetch.failed", f"{label}: get_data returned "
                  f"{type(data).__name__}", **fields, error="SourceFormatError")
        raise SourceFormatError("The provider did not return a GeoJSON FeatureCollection.")
    log_event(logger, logging.DEBUG if quiet else logging.INFO, "fetch.done",
              f"{label}: fetched from {provider.name}", **fields,
              duration_ms=round((time.perf_counter() - clock) * 1000),
              features=_feature_count(data))
    return data


def _feature_count(data: dict[str, Any]) -> int | None:
    features = data.get("features")
    if isinstance(features, list):
        return len(features)
    parts = [*(data.get("layers") or []), *(data.get("tables") or [])]
    counts = [len(p["features"]) for p in parts
              if isinstance(p, dict) and isinstance(p.get("features"), list)]
    return sum(counts) if counts else None
