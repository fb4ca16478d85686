"""Provider exceptions are mapped to ours at the boundary; none escapes unmapped."""

from __future__ import annotations

import json

import orjson
import pytest
import requests

from koop_app.data.fetch import fetch, map_exception
from koop_app.errors import (
    KoopError,
    ProviderError,
    SourceConnectError,
    SourceError,
    SourceFormatError,
    SourceTimeoutError,
)
from koop_app.provider import Provider, ProviderRequest


def _decode_error() -> Exception:
    try:
        orjson.loads(b"{")
    except orjson.JSONDecodeError as exc:
        return exc
    raise AssertionError


@pytest.mark.parametrize(
    ("exc", "expected", "status"),
    [
        # connection failures all read "could not connect", whatever the cause (issue 8)
        (requests.ConnectTimeout("t"), SourceConnectError, 502),
        (requests.ReadTimeout("t"), SourceTimeoutError, 504),
        (TimeoutError("t"), SourceTimeoutError, 504),
        (_decode_error(), SourceFormatError, 502),
        (json.JSONDecodeError("x", "doc", 0), SourceFormatError, 502),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"), SourceFormatError, 502),
        (requests.ConnectionError("c"), SourceConnectError, 502),
        (ConnectionRefusedError("c"), SourceConnectError, 502),
        (ConnectionResetError("c"), SourceConnectError, 502),
        (OSError("disk"), SourceError, 502),
        (ValueError("bug"), SourceError, 502),
        (KeyError("bug"), SourceError, 502),
    ],
)
def test_mapping(exc, expected, status):
    mapped = map_exception(exc)
    assert type(mapped) is expected
    assert mapped.status == status


def test_our_errors_pass_through():
    error = ProviderError(418, "teapot")
    assert map_exception(error) is error


class Raising(Provider):
    name = "raising"

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def get_data(self, request):
        raise self.exc


@pytest.mark.parametrize("exc", [ValueError("x"), requests.ReadTimeout("t"), ZeroDivisionError()])
def test_fetch_raises_only_koop_errors_chained_to_the_cause(exc):
    with pytest.raises(KoopError) as error:
        fetch(Raising(exc), ProviderRequest(), "test")
    assert error.value.__cause__ is exc


def test_fetch_rejects_non_dict_results():
    class ReturnsList(Provider):
        name = "list"

        def get_data(self, request):
            return []

    with pytest.raises(SourceFormatError):
        fetch(ReturnsList(), ProviderRequest(), "test")
