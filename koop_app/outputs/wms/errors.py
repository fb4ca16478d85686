"""WMS errors: a ServiceExceptionReport (1.3.0 or 1.1.1) with an exception code, HTTP 400.

OGC 06-042 (WMS 1.3.0) section 6.11 and annex E name the codes; the standard lets a server
answer exceptions with HTTP 200, we answer client errors with 400 (what the other OGC outputs
do) so that caches and scripts see a failure, and keep the code in the XML for clients.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from django.http import HttpRequest, HttpResponse

from koop_app.auth.guards import refusal_status
from koop_app.errors import AuthError, BadRequestError, InvalidParameterError, KoopError

OGC_NS = "http://www.opengis.net/ogc"
XML_1_3_0 = "text/xml"
XML_1_1_1 = "application/vnd.ogc.se_xml"


class WMSError(BadRequestError):
    """A request a WMS refuses with one of the standard's exception codes (HTTP 400)."""

    def __init__(self, code: str, message: str, locator: str | None = None) -> None:
        self.exception_code = code
        self.locator = locator
        super().__init__(message)


def missing(parameter: str) -> WMSError:
    return WMSError("MissingParameterValue", f"The {parameter} parameter is required.",
                    parameter)


def invalid(parameter: str, problem: str) -> WMSError:
    return WMSError("InvalidParameterValue", f"{parameter}: {problem}", parameter)


def exception_code(error: KoopError) -> tuple[str | None, str | None]:
    """The WMS exception code and locator for one of our errors (None: no standard code)."""
    if isinstance(error, WMSError):
        return error.exception_code, error.locator
    if isinstance(error, InvalidParameterError):
        return "InvalidParameterValue", error.parameter
    if isinstance(error, BadRequestError):
        return "InvalidParameterValue", None
    return None, None


def report(error: KoopError, version: str = "1.3.0") -> bytes:
    """The ServiceExceptionReport document of ``error`` (message and details, never a trace)."""
    code, locator = exception_code(error)
    attributes = ""
    if code:
        attributes += f' code="{escape(code)}"'
    if locator:
        attributes += f' locator="{escape(locator, {chr(34): "&quot;"})}"'
    text = "; ".join([error.message, *error.details])
    if version == "1.1.1":
        head = '<ServiceExceptionReport version="1.1.1">'
    else:
        head = (f'<ServiceExceptionReport version="1.3.0" xmlns="{OGC_NS}" '
                'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                f'xsi:schemaLocation="{OGC_NS} '
                'http://schemas.opengis.net/wms/1.3.0/exceptions_1_3_0.xsd">')
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n{head}\n'
            f'  <ServiceException{attributes}>{escape(text)}</ServiceException>\n'
            '</ServiceExceptionReport>\n')
    return body.encode()


def error_response(request: HttpRequest, error: KoopError, version: str | None = None
                   ) -> HttpResponse:
    """``error`` as a WMS answer: the report, with the error's HTTP status (401/403 for access
    refusals, with ``WWW-Authenticate: Bearer`` on 401)."""
    if version is None:
        asked = {k.upper(): v for k, v in request.GET.items()}.get("VERSION", "")
        version = "1.1.1" if asked.startswith("1.1") else "1.3.0"
    status = refusal_status(error) if isinstance(error, AuthError) else error.status
    content_type = XML_1_1_1 if version == "1.1.1" else XML_1_3_0
    response = HttpResponse(report(error, version), status=status,
                            content_type=f"{content_type}; charset=utf-8")
    if status == 401:
        response["WWW-Authenticate"] = "Bearer"
    response["Cache-Control"] = "no-store"
    return response
