"""The site's web server: waitress, with its own refusals answered as JSON.

waitress refuses some requests before the application sees them: a head past
``max_request_header_size`` (431), a body past ``max_request_body_size`` (413, decided from
Content-Length before the body is read), a request it cannot parse (400). Its answers are plain
text; ArcGIS clients read errors from a JSON body, so these come back in the GeoServices shape
``{"error": {"code", "message", "details"}}`` with the HTTP status kept (the request may not
even have a path to tell a ``/rest/`` route by). Used by ``scripts/serve``::

    python -m koopsite.server --listen=127.0.0.1:8000 ... koopsite.wsgi:application
"""

from __future__ import annotations

import sys
from typing import Any

import orjson
from waitress import runner, utilities


def json_error_response(error: utilities.Error, ident: str | None = None
                        ) -> tuple[str, list[tuple[str, str]], bytes]:
    """``waitress.utilities.Error.to_response`` with a GeoServices-shaped JSON body."""
    body = orjson.dumps({"error": {"code": error.code, "message": error.reason,
                                   "details": [str(error.body)] if error.body else []}})
    return (f"{error.code} {error.reason}",
            [("Content-Type", "application/json; charset=utf-8"),
             # ArcGIS clients in browsers must be able to read the refusal too.
             ("Access-Control-Allow-Origin", "*")],
            body)


def main(argv: list[str] | None = None) -> Any:
    utilities.Error.to_response = json_error_response  # type: ignore[method-assign]
    return runner.run(argv=["koopsite.server", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
