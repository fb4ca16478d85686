"""Calling a provider: its exceptions become ours here, at the boundary."""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
import requests

from koop_app.errors import (
    KoopError,
    ProviderError,
    SourceError,
    SourceFormatError,
    SourceTimeoutError,
)
from koop_app.provider import Provider, ProviderRequest

logger = logging.getLogger(__name__)


def map_exception(exc: Exception) -> KoopError:
    """The most specific KoopError for an exception a provider let escape."""
    if isinstance(exc, KoopError):
        return exc
    if isinstance(exc, (requests.Timeout, TimeoutError)):
        return SourceTimeoutError(log_message=f"timeout: {exc}")
    if isinstance(exc, (orjson.JSONDecodeError, json.JSONDecodeError, UnicodeDecodeError)):
        return SourceFormatError(log_message=f"unparsable content: {exc}")
    if isinstance(exc, (requests.RequestException, ConnectionError, OSError)):
        return SourceError(log_message=f"source failed: {exc}")
    return ProviderError(500, "The provider failed.", log_message=f"{type(exc).__name__}: {exc}")


def fetch(provider: Provider, request: ProviderRequest, label: str) -> dict[str, Any]:
    """``provider.get_data(request)``, with failures raised as KoopError subclasses."""
    try:
        data = provider.get_data(request)
    except Exception as exc:
        error = map_exception(exc)
        logger.warning("%s: get_data failed: %s", label, error.log_message,
                       exc_info=not isinstance(exc, KoopError))
        if error is exc:
            raise
        raise error from exc
    if not isinstance(data, dict):
        raise SourceFormatError("The provider did not return a GeoJSON FeatureCollection.")
    return data
