"""The export views: a query's rows streamed as CSV, a JSON array of records, or NDJSON.

They live outside ``/rest/``, so HTTP statuses are real: errors are problem JSON (RFC 9457,
``application/problem+json``) with the status of the error, refusals 401/403 as the access gate
reports them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import orjson
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse

from koop_app.auth.guards import refusal_status
from koop_app.errors import AuthError, DatasetLoadingError, InvalidParameterError, KoopError
from koop_app.outputs import serving
from koop_app.outputs.flat import encoders
from koop_app.outputs.flat.export import Export, ExportTooLargeError, Planner
from koop_app.outputs.geoservices.serializers import layer_name

logger = logging.getLogger(__name__)

METHODS = ("GET", "HEAD", "POST")
# Headers of the caching probe copied onto the streamed answer.
CACHE_HEADERS = ("ETag", "Last-Modified", "Cache-Control", "Vary")
# Excel opens a CSV as UTF-8 only when it starts with a byte order mark.
BOM = "\ufeff".encode()


class ExportInterruptedError(Exception):
    """An export failed after its first bytes were sent: the connection is closed unfinished
    (no last chunk), so clients see a broken transfer rather than a file cut short."""


# --- errors -----------------------------------------------------------------------------------

def problem_response(request: HttpRequest, error: KoopError) -> HttpResponse:
    """``error`` as problem JSON (RFC 9457) with its HTTP status."""
    status = refusal_status(error)
    if not 400 <= status <= 599:
        status = 502  # a provider's odd status: its source failed
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status,
                            "detail": error.message}
    if isinstance(error, InvalidParameterError):
        body["detail"] = error.details[0] if error.details else error.message
        body["parameter"] = error.parameter
    elif error.details:
        body["details"] = error.details
    if isinstance(error, ExportTooLargeError):
        body["rows"], body["limit"] = error.rows, error.cap
    response = HttpResponse(orjson.dumps(body), status=status,
                            content_type="application/problem+json")
    if status == 401 and isinstance(error, AuthError):
        response["WWW-Authenticate"] = "Bearer"
    if isinstance(error, DatasetLoadingError):
        response["Retry-After"] = str(error.retry_after)
    return response


# --- formats ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class FlatFormat:
    name: str
    extension: str
    content_type: str
    disposition: str  # attachment: a file to save; inline: readable in the browser

    def writer(self, params: dict[str, str]) -> tuple[bytes, Callable[..., Iterator[bytes]],
                                                       bytes]:
        """Head, rows writer and tail of a body in this format."""
        if self.name == "csv":
            head = BOM if _flag(params, "bom") else b""
            return head, encoders.csv_rows, b""
        if self.name == "json":
            return b"[", encoders.JSONArrayWriter().rows, b"]"
        return b"", encoders.ndjson_rows, b""


CSV = FlatFormat("csv", "csv", "text/csv; charset=utf-8; header=present", "attachment")
JSON = FlatFormat("json", "json", "application/json", "inline")
NDJSON = FlatFormat("ndjson", "ndjson", "application/x-ndjson", "inline")


def _flag(params: dict[str, str], name: str) -> bool:
    value = (params.get(name) or "").strip().lower()
    if value in ("", "false", "0", "no"):
        return False
    if value in ("true", "1", "yes"):
        return True
    raise InvalidParameterError(name, "expected true or false")


def content_disposition(disposition: str, name: str, extension: str) -> str:
    """``filename`` in ASCII for every client and ``filename*`` in UTF-8 (RFC 6266)."""
    plain = re.sub(r"[^A-Za-z0-9._ -]+", "_", name).strip(" ._") or "export"
    return (f'{disposition}; filename="{plain}.{extension}"; '
            f"filename*=UTF-8''{quote(name or 'export', safe='')}.{extension}")


# --- the view ---------------------------------------------------------------------------------

def _body(export: Export, fmt: FlatFormat, params: dict[str, str], path: str
          ) -> Iterator[bytes]:
    head, rows, tail = fmt.writer(params)
    if fmt.name == "csv":
        head += encoders.csv_header(export.columns)
    yield head
    try:
        for chunk in export.chunks():
            yield from rows(chunk, export.columns)
    except KoopError as exc:
        # The status was sent with the first bytes: all that is left is to break the transfer.
        logger.warning("export %s interrupted: %s", path, exc.log_message)
        raise ExportInterruptedError(exc.message) from exc
    yield tail


def export_view(fmt: FlatFormat) -> Callable[..., HttpResponseBase]:
    """The view answering one layer's export in ``fmt``."""

    @serving.answering_errors(problem_response)
    def view(request: HttpRequest, provider: str, layer: str, host: str | None = None,
             id: str | None = None) -> HttpResponseBase:
        if request.method not in METHODS:
            response = problem_response(request, _NotAllowed(request.method or ""))
            response["Allow"] = ", ".join(METHODS)
            return response
        dataset = serving.find_dataset(provider, host, id)
        params = serving.request_params(request)
        planner = Planner(request, dataset, int(layer), params)
        _flag(params, "bom")  # checked before any data is read
        # The client's copy may be current: a 304 before any row is read.
        probe = serving.cacheable(request, HttpResponse(), dataset, planner.layers(),
                                  {**params, "_export": fmt.name})
        if probe.status_code == 304:
            return probe
        export = planner.plan()
        response = StreamingHttpResponse(_body(export, fmt, params, request.path),
                                         content_type=fmt.content_type)
        name = layer_name(export.table, dataset.name or dataset.dataset_id or provider)
        response["Content-Disposition"] = content_disposition(fmt.disposition, name,
                                                              fmt.extension)
        for header in CACHE_HEADERS:
            if header in probe:
                response[header] = probe[header]
        return response

    view.__name__ = f"export_{fmt.name}"
    return view


class _NotAllowed(KoopError):
    status = 405

    def __init__(self, method: str) -> None:
        super().__init__(f"{method} is not allowed here; use GET or POST.")


csv_view = export_view(CSV)
json_view = export_view(JSON)
ndjson_view = export_view(NDJSON)
