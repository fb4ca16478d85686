"""The GeoServices error answer: HTTP 200 with ``{"error": {code, message, details}}``.

ArcGIS Server answers errors this way and ArcGIS clients read the code from the body. Unknown
exceptions are logged and answered with code 500 so a client never gets an HTML page; with
DEBUG they are re-raised to stay visible.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from koop_app.errors import KoopError

logger = logging.getLogger(__name__)


def error_body(code: int, message: str, details: list[str] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


def geoservices_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, KoopError):
        if exc.status >= 500:
            logger.warning("GeoServices error %s: %s", exc.code, exc.log_message)
        return Response(error_body(exc.code, exc.message, exc.details), status=200)
    if isinstance(exc, drf_exceptions.APIException):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return Response(error_body(exc.status_code, "Unable to complete operation.", [detail]),
                        status=200)
    if settings.DEBUG:
        return None
    logger.exception("Unexpected error on a GeoServices route")
    return Response(error_body(500, "Internal error."), status=200)
