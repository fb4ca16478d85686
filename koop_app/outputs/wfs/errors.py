"""WFS errors as OWS ExceptionReports (OWS 1.1 for WFS 2.0, OWS 1.0 for WFS 1.1).

Our error tree maps onto the OWS exception codes here: a bad parameter is
``InvalidParameterValue`` with the WFS parameter as locator, a missing one
``MissingParameterValue``; a crash is ``NoApplicableCode`` with its log reference.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from django.http import HttpRequest, HttpResponse

from koop_app.auth.guards import refusal_status
from koop_app.errors import AuthError, InvalidParameterError, KoopError, NotFoundError

OWS11 = "http://www.opengis.net/ows/1.1"
OWS10 = "http://www.opengis.net/ows"

# The GeoServices parameters our WFS parameters become, back to the WFS names (a locator).
LOCATORS = {"where": "FILTER", "geometry": "BBOX", "inSR": "BBOX", "resultOffset": "STARTINDEX",
            "resultRecordCount": "COUNT", "outSR": "SRSNAME", "orderByFields": "SORTBY",
            "outFields": "PROPERTYNAME", "objectIds": "RESOURCEID", "filter": "FILTER"}


class WFSError(KoopError):
    """A request the WFS refuses, with its OWS exception code and locator."""

    status = 400

    def __init__(self, code: str, message: str, locator: str | None = None, *,
                 status: int = 400) -> None:
        self.exception_code = code
        self.locator = locator
        self.status = status
        super().__init__(message)


def missing(parameter: str) -> WFSError:
    return WFSError("MissingParameterValue", f"The parameter {parameter} is required.",
                    parameter)


def invalid(parameter: str, problem: str) -> WFSError:
    return WFSError("InvalidParameterValue", f"{parameter}: {problem}", parameter)


def version_of(request: HttpRequest) -> str:
    """The WFS version an error is written for: the one parsed, else the one asked for."""
    parsed = getattr(request, "wfs_version", None)
    if parsed:
        return str(parsed)
    for key, value in request.GET.items():
        if key.lower() in ("version", "acceptversions") and value.strip().startswith("1.1"):
            return "1.1.0"
    return "2.0.0"


def describe(error: KoopError) -> tuple[str, str | None, str]:
    """(exceptionCode, locator, text) of one of our errors."""
    if isinstance(error, WFSError):
        return error.exception_code, error.locator, error.message
    text = "; ".join([error.message, *error.details]) if error.details else error.message
    if isinstance(error, InvalidParameterError):
        locator = LOCATORS.get(error.parameter, error.parameter)
        return "InvalidParameterValue", locator, "; ".join(error.details) or error.message
    if isinstance(error, NotFoundError):
        return "NotFound", None, text
    if error.status == 400:
        return "InvalidParameterValue", None, text
    if error.status in (401, 403) or isinstance(error, AuthError):
        return "NoApplicableCode", None, text  # OWS has no code of its own for it
    if error.status == 500:
        return "NoApplicableCode", None, text
    return "OperationProcessingFailed", None, text


def exception_report(request: HttpRequest, error: KoopError) -> HttpResponse:
    """``error`` as an ExceptionReport with its HTTP status (refusals: 401/403)."""
    version = version_of(request)
    code, locator, text = describe(error)
    namespace, ows_version = (OWS10, "1.1.0") if version.startswith("1.1") else (OWS11, "2.0.0")
    where = f" locator={quoteattr(locator)}" if locator else ""
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<ows:ExceptionReport xmlns:ows="{namespace}" version="{ows_version}" '
            f'xml:lang="en">'
            f'<ows:Exception exceptionCode="{code}"{where}>'
            f"<ows:ExceptionText>{escape(text)}</ows:ExceptionText>"
            f"</ows:Exception></ows:ExceptionReport>")
    status = refusal_status(error) if isinstance(error, AuthError) else error.status
    response = HttpResponse(body.encode(), status=status,
                            content_type="application/xml; charset=utf-8")
    if status == 401:
        response["WWW-Authenticate"] = "Bearer"
    return response
