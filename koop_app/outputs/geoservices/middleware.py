"""Under ``/rest/``, every answer is GeoServices JSON: request limits and errors outside views.

ArcGIS clients read errors from a JSON body (HTTP 200); an HTML page from Django (a 404 of the
URL resolver, a 400 for a body it cannot read, a 500) leaves them with nothing to show. This
middleware applies to any path with a ``rest`` segment (``/rest/info``,
``/<provider>/rest/services/...``); elsewhere (admin, ``/health``) it does nothing, and real
HTTP statuses stay. It:

- refuses, before the body is read, a URL longer than ``KOOP["MAX_URL_BYTES"]``, a body
  whose Content-Length passes ``KOOP["MAX_REQUEST_BODY_BYTES"]`` and, under WSGI, a chunked
  body without a length (``asgi.RestBodyLimit`` bounds streamed bodies under ASGI);
- reads the query string and the form up front with an upload handler that refuses file parts,
  so that an unreadable body (no multipart boundary, too many fields, an unknown charset) and
  a file upload are a code 400 instead of a spooled file or an HTML page;
- turns any other 4xx/5xx answer into ``{"error": {...}}`` with HTTP 200 and JSONP, and
  an exception that escaped a view into a code 500 with a logged reference (with DEBUG, 5xx
  pages stay as Django renders them, for development). A 4xx that already carries a
  GeoServices error body (the rate limit's 429, an access gate's 401/403) keeps it, and its
  ``Retry-After``: other layers answer with real statuses and leave the /rest/ form to this.

Put it first in ``MIDDLEWARE`` so that it also sees the answers of the other middleware.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

import orjson
from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse

from koop_app.conf import koop_settings
from koop_app.errors import InvalidParameterError, RequestBodyError
from koop_app.logs import log_event
from koop_app.outputs.geoservices.handlers import (
    CRASH_EVENT,
    crash_body,
    error_body,
    logger,
    request_error,
    retry_after_header,
)
from koop_app.outputs.geoservices.renderers import jsonp_callback

# The message of each HTTP status when it becomes a GeoServices error body.
STATUS_MESSAGES = {
    400: "Unable to complete operation.",
    403: "You do not have permissions to access this resource or perform this operation.",
    404: "Invalid URL.",
    405: "Method not allowed.",
    413: "The request is too large.",
    414: "The request URL is too long.",
    429: "Too many requests.",
}
# Headers of a refused answer that still mean something on its HTTP 200 form.
CARRIED_HEADERS = ("Retry-After", "Access-Control-Expose-Headers")


def is_rest_path(path: str) -> bool:
    """A GeoServices path: one of its segments is ``rest``."""
    return "rest" in path.split("/")


class FilePartRefusal(FileUploadHandler):
    """Refuses the first file part of a multipart body, before any of it is stored."""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        raise RequestBodyError("File uploads are not accepted here.")

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        return None  # never reached: new_file refuses first

    def file_complete(self, file_size: int) -> None:
        return None


class GeoServicesErrorMiddleware:
    """GeoServices JSON for every answer under ``/rest/``; see the module docstring."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_rest_path(request.path_info):
            return self.get_response(request)
        try:
            self.read(request)
        except Exception as exc:
            error = request_error(exc)
            if error is None:
                raise
            return self.answer(request, error_body(error.code, error.message, error.details))
        return self.as_geoservices(request, self.get_response(request))

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        """An exception that escaped a view (DRF views answer their own)."""
        if not is_rest_path(request.path_info):
            return None
        error = request_error(exc)
        if error is not None:
            answer = self.answer(request, error_body(error.code, error.message, error.details))
            for header, value in retry_after_header(error).items():
                answer[header] = value
            return answer
        if settings.DEBUG:
            return None
        return self.answer(request, crash_body(exc, request.path))

    @staticmethod
    def read(request: HttpRequest) -> None:
        """Check the limits, then parse the query string and the form (errors raise)."""
        url_bytes = len(request.path) + len(request.META.get("QUERY_STRING", ""))
        if url_bytes > koop_settings.MAX_URL_BYTES:
            raise RequestBodyError("The request URL is too long.",
                                   details=["Send long parameters in a POST body."])
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # Django reads no body then
        if length > koop_settings.MAX_REQUEST_BODY_BYTES:
            raise RequestBodyError("The request body is too large.")
        if (not length and "wsgi.input" in request.META
                and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()):
            # WSGI gives Django no body without a length: say so rather than drop the form.
            # (Under ASGI, RestBodyLimit in asgi.py bounds a streamed body instead.)
            raise RequestBodyError("A request body needs a Content-Length header.")
        try:
            request.GET  # noqa: B018  (parse now: too many fields is a 400 here)
            if request.method == "POST":
                request.upload_handlers = [FilePartRefusal()]
                request.POST  # noqa: B018
        except (UnicodeError, LookupError):  # a charset Python lacks, or bytes not in it
            raise RequestBodyError("The request is not in a supported character encoding.") \
                from None

    def as_geoservices(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        status = response.status_code
        if status < 400 or (status >= 500 and settings.DEBUG):
            return response
        if getattr(response, "keeps_http_status", False):
            return response  # a missing tile: clients read its 404, not a body (vectortiles)
        if status >= 500:
            reference = secrets.token_hex(4)
            log_event(logger, logging.ERROR, CRASH_EVENT,
                      f"HTTP {status} on {request.path} (reference {reference})",
                      reference=reference, path=request.path, status=status)
            body = error_body(500, f"An unexpected error occurred, reference {reference}.")
        else:
            body = _error_body_of(response) or error_body(
                status, STATUS_MESSAGES.get(status, STATUS_MESSAGES[400]))
        answer = self.answer(request, body)
        for header in CARRIED_HEADERS:
            if header in response:
                answer[header] = response[header]
        return answer

    @staticmethod
    def answer(request: HttpRequest, body: dict[str, Any]) -> HttpResponse:
        """``body`` as HTTP 200 JSON (JSONP when a valid ``callback`` was sent); CORS headers
        come from django-cors-headers, outside this middleware."""
        payload = orjson.dumps(body)
        content_type = "application/json; charset=utf-8"
        try:
            callback = jsonp_callback(_params(request))
        except InvalidParameterError:
            callback = None
        if callback:
            payload = callback.encode() + b"(" + payload + b");"
            content_type = "application/javascript; charset=utf-8"
        return HttpResponse(payload, content_type=content_type, status=200)


def _error_body_of(response: HttpResponse) -> dict[str, Any] | None:
    """The ``{"error": {...}}`` body a refusal already carries, if it is one."""
    if response.streaming or not response.get("Content-Type", "").startswith("application/json"):
        return None
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), dict) and "code" in body["error"]:
        return body
    return None


def _params(request: HttpRequest) -> dict[str, str]:
    """The query string (and the form, when it was read without error): for ``callback``."""
    params: dict[str, str] = {}
    for source in ("GET", "_post"):
        try:
            values = getattr(request, source, None)
            if values is not None:
                params.update({key: values.get(key, "") for key in values})
        except Exception:  # an unreadable query string or form: no callback then
            continue
    return params
