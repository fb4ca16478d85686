"""A check on every response a test sees: no test may pass through a crash of ours.

``tests/conftest.py`` turns it on for every test. It wraps Django's request handling (the test
``Client`` and DRF's ``APIClient``, live servers in this process) and DRF views called straight
from a ``RequestFactory``, and it listens to the logs for crashes answered elsewhere. A test
fails when any response it caused

- has an HTTP status of 500 or more,
- is a GeoServices error body with code 500 (our handler's answer to a bug),
- is HTML under ``/rest/`` (ArcGIS clients cannot read it) unless the request asked for it
  with ``f=html`` (the services directory's pages),
- is an ``f=html`` page showing a code-500 error (``data-error-code="500"``),
- holds a Python traceback,

or when a ``request.crashed`` event or a Django "Internal Server Error" was logged. A test that
means to see one of these says so, narrowly: ``@pytest.mark.expected_server_error(503)``
allows HTTP 503 (and its log line); ``expected_server_error(500)`` allows a code-500 body.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from django.core.handlers.base import BaseHandler
from rest_framework.views import APIView

from koop_app.outputs.geoservices.handlers import CRASH_EVENT
from koop_app.outputs.geoservices.middleware import is_rest_path

_CODE_500 = re.compile(rb'"code"\s*:\s*500\b')
_HTML_CODE_500 = re.compile(rb'data-error-code="500"')
_JSONP = re.compile(rb"^[\w$.]+\((.*)\);?$", re.S)
TRACEBACK = b"Traceback (most recent call last)"


def problems_of(path: str, status: int, content_type: str, body: bytes | None,
                allowed: frozenset[int] = frozenset(), html_asked: bool = False) -> list[str]:
    """What is wrong with one response, as short sentences (empty when nothing is).

    ``html_asked``: the request said ``f=html``, so HTML under ``/rest/`` is its answer.
    """
    problems = []
    is_html = content_type.startswith("text/html")
    if status >= 500 and status not in allowed:
        problems.append(f"HTTP {status}")
    # An empty answer (a CORS preflight's) carries Django's default type and no page.
    if is_rest_path(path) and is_html and body != b"" and not (html_asked and status == 200):
        problems.append("HTML under /rest/")
    if body is not None:
        if 500 not in allowed and _CODE_500.search(body) and _error_code(body) == 500:
            problems.append('a {"error": {"code": 500}} body')
        if 500 not in allowed and is_html and _HTML_CODE_500.search(body):
            problems.append("a code-500 error page")
        if TRACEBACK in body:
            problems.append("a traceback in the body")
    return [f"{path}: {problem}" for problem in problems]


def asks_html(request: Any) -> bool:
    """Whether the request's ``f`` (query string, or a form already read) is ``html``."""
    values = []
    for name in ("GET", "_post", "query_params"):
        try:
            source = getattr(request, name, None)
            if source is not None:
                values.append(source.get("f"))
        except Exception:  # an unreadable form: the response says what was wrong
            continue
    return any((value or "").strip().lower() == "html" for value in values)


def _error_code(body: bytes) -> Any:
    match = _JSONP.match(body.strip())
    try:
        document = orjson.loads(match.group(1) if match else body)
    except orjson.JSONDecodeError:
        return None
    error = document.get("error") if isinstance(document, dict) else None
    return error.get("code") if isinstance(error, dict) else None


class CrashGuard(logging.Handler):
    """Collects problems from responses and logs while one test runs."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.allowed: frozenset[int] = frozenset()
        self.problems: list[str] = []
        self._lock = threading.Lock()

    def check_response(self, request: Any, response: Any) -> None:
        path = getattr(request, "path", "") or ""
        body = None if getattr(response, "streaming", False) else response.content
        found = problems_of(path, response.status_code, response.get("Content-Type", ""),
                            body, self.allowed, asks_html(request))
        if found:
            with self._lock:
                self.problems.extend(found)

    def emit(self, record: logging.LogRecord) -> None:
        crashed = getattr(record, "event", None) == CRASH_EVENT
        server_error = record.name == "django.request" and record.levelno >= logging.ERROR
        status = getattr(record, "status_code", None) or (500 if crashed else None)
        if (crashed or server_error) and status not in self.allowed:
            with self._lock:
                self.problems.append(f"logged: {record.getMessage()[:200]}")


class _StatusOnly:
    """A response not rendered yet: its status and type can be checked, not its body."""

    streaming = True

    def __init__(self, response: Any) -> None:
        self.status_code = response.status_code
        self.get = lambda name, default="": default

    @property
    def content(self) -> bytes:  # pragma: no cover - streaming responses are not read
        return b""


@contextmanager
def guarded(allowed: frozenset[int]) -> Iterator[CrashGuard]:
    """Check every response and crash log while the block runs."""
    guard = CrashGuard()
    guard.allowed = allowed
    original_get_response = BaseHandler.get_response
    original_finalize = APIView.finalize_response

    def get_response(handler: BaseHandler, request: Any) -> Any:
        request._crash_guard_seen = True
        response = original_get_response(handler, request)
        guard.check_response(request, response)
        return response

    def finalize_response(view: APIView, request: Any, response: Any, *args: Any,
                          **kwargs: Any) -> Any:
        response = original_finalize(view, request, response, *args, **kwargs)
        if not getattr(request, "_crash_guard_seen", False):  # RequestFactory: no handler
            guard.check_response(request, _StatusOnly(response))
            response.add_post_render_callback(
                lambda rendered: guard.check_response(request, rendered))
        return response

    BaseHandler.get_response = get_response  # type: ignore[method-assign]
    APIView.finalize_response = finalize_response  # type: ignore[method-assign]
    root = logging.getLogger()
    root.addHandler(guard)
    try:
        yield guard
    finally:
        root.removeHandler(guard)
        BaseHandler.get_response = original_get_response  # type: ignore[method-assign]
        APIView.finalize_response = original_finalize  # type: ignore[method-assign]
