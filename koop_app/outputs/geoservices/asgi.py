"""Under ASGI, the request body limit of ``/rest/`` routes, applied while the body streams in.

Django's ASGI handler reads a whole body (spooling it to disk) before any middleware runs, so
``GeoServicesErrorMiddleware`` would see a 200 MB upload only once it is stored. This wrapper
sits in front of the Django application: for a ``/rest/`` path it refuses a Content-Length over
``KOOP["MAX_REQUEST_BODY_BYTES"]`` at once, and a body sent without a length (chunked) as soon
as it passes the limit, with the GeoServices error body; bodies within the limit are handed on.

    application = RestBodyLimit(get_asgi_application())
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from koop_app.conf import koop_settings
from koop_app.outputs.geoservices.handlers import error_body
from koop_app.outputs.geoservices.middleware import is_rest_path

# This refusal is sent before Django (and django-cors-headers) sees the request: the headers a
# browser on another origin needs to read it are written here.
CORS_HEADERS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Retry-After"}
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

TOO_LARGE = error_body(400, "The request body is too large.")


class RestBodyLimit:
    """An ASGI wrapper: see the module docstring."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or not is_rest_path(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        limit = koop_settings.MAX_REQUEST_BODY_BYTES
        if _declared_length(scope) > limit:
            await _refuse(send)
            return
        messages: list[Message] = []
        size = 0
        while True:  # read the body here, counting, before Django spools any of it
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await _refuse(send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


async def _refuse(send: Send) -> None:
    body = orjson.dumps(TOO_LARGE)
    headers = [(b"content-type", b"application/json; charset=utf-8"),
               (b"content-length", str(len(body)).encode()),
               (b"connection", b"close"),
               *((name.lower().encode(), value.encode()) for name, value in CORS_HEADERS.items())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
