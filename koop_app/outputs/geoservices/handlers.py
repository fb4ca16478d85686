"""The GeoServices error answer: HTTP 200 with ``{"error": {code, message, details}}``.

ArcGIS Server answers errors this way and ArcGIS clients read the code from the body. An
unknown exception is a bug of ours: it is logged (event ``request.crashed``, with its traceback
and a short reference) and answered with code 500 and that reference only, never internals.
With DEBUG it is re-raised instead so that it stays visible during development.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
)
from django.http.multipartparser import MultiPartParserError
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from koop_app.errors import KoopError, ProviderError, RequestBodyError
from koop_app.logs import log_event

logger = logging.getLogger(__name__)

CRASH_EVENT = "request.crashed"


def error_body(code: int, message: str, details: list[str] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


def log_crash(exc: BaseException, path: str = "") -> str:
    """Log ``exc`` as a crash (event ``request.crashed``) and return its new short reference.

    Every output answers its crashes through this, so that tests see each of them."""
    reference = secrets.token_hex(4)
    log_event(logger, logging.ERROR, CRASH_EVENT,
              f"unexpected {type(exc).__name__} on {path or 'a GeoServices route'} "
              f"(reference {reference})", exc_info=exc, reference=reference, path=path)
    return reference


def crash_body(exc: BaseException, path: str = "") -> dict[str, Any]:
    """Log ``exc`` as a crash under a new reference and return the code-500 body naming it."""
    reference = log_crash(exc, path)
    return error_body(500, f"An unexpected error occurred, reference {reference}.")


def retry_after_header(error: KoopError) -> dict[str, str]:
    """``Retry-After`` for an error that says when to ask again (a dataset still loading)."""
    seconds = getattr(error, "retry_after", None)
    return {"Retry-After": str(seconds)} if seconds else {}


def request_error(exc: BaseException) -> KoopError | None:
    """Our error for a request Django could not read (its body or its query string)."""
    if isinstance(exc, KoopError):
        return exc
    if isinstance(exc, RequestDataTooBig):
        return RequestBodyError("The request body is too large.")
    if isinstance(exc, TooManyFieldsSent):
        return RequestBodyError("The request has too many parameters.")
    if isinstance(exc, MultiPartParserError):
        return RequestBodyError("The multipart body cannot be read.")
    if isinstance(exc, BadRequest):  # Django's own words, e.g. "... must be UTF-8 encoded."
        return RequestBodyError("The request cannot be read.", details=[str(exc)[:200]])
    if isinstance(exc, SuspiciousOperation):
        return RequestBodyError("The request cannot be read.")
    return None


def geoservices_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    known = request_error(exc)
    # Code 500 is ours alone: a source's failure is a ProviderError (502/504) and a query that
    # ran out of time is a QueryTimeoutError (504), neither a bug.
    if known is not None and known.status == 500 and not isinstance(known, ProviderError):
        if settings.DEBUG:
            return None
        # Ours on purpose, yet a failure of ours (e.g. DuckDB failing on a valid query).
        request = context.get("request")
        return Response(crash_body(exc, getattr(request, "path", "")), status=200)
    if known is not None:
        if known.status >= 500:
            logger.warning("GeoServices error %s: %s", known.code, known.log_message)
        return Response(error_body(known.code, known.message, known.details), status=200,
                        headers=retry_after_header(known))
    if isinstance(exc, drf_exceptions.APIException):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return Response(error_body(exc.status_code, "Unable to complete operation.", [detail]),
                        status=200)
    if settings.DEBUG:
        return None
    request = context.get("request")
    return Response(crash_body(exc, getattr(request, "path", "")), status=200)
