"""Errors of OGC API - Features as problem details (RFC 7807, ``application/problem+json``)."""

from __future__ import annotations

from http import HTTPStatus

import orjson
from django.http import HttpRequest, HttpResponse

from koop_app.auth.guards import refusal_status
from koop_app.errors import AuthError, KoopError
from koop_app.outputs.geoservices.handlers import retry_after_header

PROBLEM_JSON = "application/problem+json"


def problem(status: int, detail: str, *, title: str | None = None) -> HttpResponse:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = {"type": "about:blank", "title": title or phrase, "status": status,
            "detail": detail}
    return HttpResponse(orjson.dumps(body), status=status, content_type=PROBLEM_JSON)


def error_response(request: HttpRequest, error: KoopError) -> HttpResponse:
    """Any of our errors (an access refusal too) as problem details with its HTTP status."""
    status = refusal_status(error) if isinstance(error, AuthError) else error.status
    detail = "; ".join([error.message, *error.details]) if error.details else error.message
    if error.details and error.message == "Unable to complete operation.":
        detail = "; ".join(error.details)
    response = problem(status, detail)
    if status == 401:
        response["WWW-Authenticate"] = "Bearer"
    for name, value in retry_after_header(error).items():
        response[name] = value
    return response
