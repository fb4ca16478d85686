"""One FeatureServer (or MapServer) on a configured ArcGIS server: requests, tokens, errors.

Every request is a form-encoded POST (the GeoServices REST API takes POST on every resource):
long ``where``, ``geometry`` and ``objectIds`` values fit, and the token travels in the body,
never in a URL that a log line could print. ArcGIS answers most errors with HTTP 200 and
``{"error": {"code", "message", "details"}}``; ``SourceService.call`` turns them into our
errors, and renews a token once when the server answers 498 (invalid or expired token) or 499
(token required).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from django.core.cache import cache

from koop_app import net
from koop_app.connections import connection, redact_url
from koop_app.errors import (
    BadRequestError,
    KoopError,
    NotFoundError,
    SourceAuthError,
    SourceError,
    SourceFormatError,
)

logger = logging.getLogger(__name__)

# Statuses read here rather than by koop_app.net: their bodies say why (ArcGIS error JSON).
READ_STATUSES = frozenset({400, 401, 403, 404, 498, 499, 500, 502, 503, 504})
TOKEN_MINUTES = 60
RENEW_MARGIN_SECONDS = 60  # a token this close to expiry is renewed before use


@dataclass(frozen=True)
class Server:
    """A connection of KOOP["CONNECTIONS"]["arcgis"]: a server's ``.../rest/services`` root."""

    name: str
    url: str
    token: str = ""
    username: str = ""
    password: str = ""
    referer: str = ""
    token_url: str = ""

    @classmethod
    def named(cls, name: str | None) -> Server:
        values = connection("arcgis", name)
        url = str(values.get("url") or "").rstrip("/")
        # Credentials go in username/password (secrets), never in the URL that logs print.
        if not url.lower().startswith(("http://", "https://")) or "@" in url.split("/")[2]:
            raise SourceError("The ArcGIS server is not configured correctly.",
                              log_message=f"KOOP['CONNECTIONS']['arcgis'][{name!r}]: 'url' "
                                          "must be the server's http(s) .../rest/services URL, "
                                          "without user:password@")
        return cls(str(name), url, **{key: str(values.get(key) or "") for key in
                                      ("token", "username", "password", "referer", "token_url")})

    @property
    def rest_root(self) -> str:
        """``.../rest`` (where ``info`` lives) from ``.../rest/services``."""
        return self.url[: -len("/services")] if self.url.endswith("/services") else self.url

    @property
    def signs_in(self) -> bool:
        return bool(self.username and self.password)


class _Tokens:
    """Tokens got with generateToken, per server, kept in this process only (never cached
    elsewhere, never logged)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}

    def get(self, server: Server, *, renew: bool = False) -> str:
        if server.token and not server.signs_in:
            return server.token
        if not server.signs_in:
            return ""
        key = (server.name, server.url, server.username)
        with self._lock:
            held = self._tokens.get(key)
            if held and not renew and held[1] - RENEW_MARGIN_SECONDS > time.time():
                return held[0]
            token, expires = generate_token(server)
            self._tokens[key] = (token, expires)
            return token

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


tokens = _Tokens()


def generate_token(server: Server) -> tuple[str, float]:
    """A token for the server's username/password: (token, expiry as epoch seconds)."""
    url = server.token_url or _token_url(server)
    form = {"username": server.username, "password": server.password,
            "expiration": str(TOKEN_MINUTES), "f": "json"}
    if server.referer:
        form.update(client="referer", referer=server.referer)
    else:
        form["client"] = "requestip"
    body = _post(server, url, form, what="generateToken")
    token = body.get("token")
    if "error" in body or not isinstance(token, str) or not token:
        raise SourceAuthError("The ArcGIS server refused the configured username and password.",
                              log_message=f"arcgis {server.name}: generateToken at "
                                          f"{redact_url(url)} refused: {_error_text(body)}")
    expires = body.get("expires")
    seconds = expires / 1000 if isinstance(expires, (int, float)) else time.time() + 60 * \
        TOKEN_MINUTES
    logger.info("arcgis %s: token generated at %s", server.name, redact_url(url))
    return token, float(seconds)


def _token_url(server: Server) -> str:
    """The server's token service, as its ``rest/info`` names it."""
    info = _post(server, f"{server.rest_root}/info", {"f": "json"}, what="rest/info")
    auth = info.get("authInfo") or {}
    url = auth.get("tokenServicesUrl") if isinstance(auth, dict) else None
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise SourceAuthError("The ArcGIS server has no token service; set token_url.",
                              log_message=f"arcgis {server.name}: {server.rest_root}/info names "
                                          "no tokenServicesUrl")
    return url


def _post(server: Server, url: str, form: Mapping[str, str], *, what: str) -> dict[str, Any]:
    """POST ``form`` to ``url``; the decoded JSON object (an error JSON included)."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if server.referer:
        headers["Referer"] = server.referer
    answer = net.request("POST", url, headers=headers, body=urlencode(form).encode(),
                         accept=READ_STATUSES)
    try:
        body = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        if answer.status == 404:
            raise NotFoundError("The service was not found on the ArcGIS server.",
                                log_message=f"arcgis {server.name}: {what}: HTTP 404 at "
                                            f"{redact_url(url)}")
        if answer.status in (401, 403, 498, 499):
            raise SourceAuthError(log_message=f"arcgis {server.name}: {what}: HTTP "
                                              f"{answer.status} at {redact_url(url)}")
        if answer.status >= 400:
            raise SourceError(f"The ArcGIS server answered HTTP {answer.status}.",
                              log_message=f"arcgis {server.name}: {what}: HTTP {answer.status} "
                                          f"at {redact_url(url)}")
        raise SourceFormatError("The ArcGIS server did not answer JSON.",
                                log_message=f"arcgis {server.name}: {what}: not a JSON object "
                                            f"from {redact_url(url)}")
    if "error" not in body and answer.status >= 400:
        body = {"error": {"code": answer.status, "message": f"HTTP {answer.status}"}}
    return body


def _error_text(body: Mapping[str, Any]) -> str:
    error = body.get("error")
    if not isinstance(error, dict):
        return "no token in the answer"
    details = error.get("details") or []
    return f"{error.get('code')} {error.get('message')} {details}"


def error_code(body: Mapping[str, Any]) -> int | None:
    error = body.get("error")
    if not isinstance(error, dict):
        return None
    code = error.get("code")
    try:
        return int(code)
    except (TypeError, ValueError):
        return 500


class SourceService:
    """One service of a Server: ``<url>/<path>/<type>`` and the calls made to it."""

    def __init__(self, server: Server, path: str, service_type: str = "FeatureServer") -> None:
        self.server = server
        self.path = path
        self.service_type = service_type
        self.url = f"{server.url}/{quote(path)}/{service_type}"

    def call(self, suffix: str, params: Mapping[str, str], *, what: str = "query"
             ) -> dict[str, Any]:
        """POST ``params`` (with the token) to the service URL + ``suffix``; the JSON answer,
        or the error its error JSON means."""
        url = self.url + suffix
        form = {**params, "f": "json"}
        body = self._with_token(url, form, what, renew=False)
        code = error_code(body)
        if code in (498, 499) and self.server.signs_in:
            # Expired, revoked or never sent: one new token, one more try.
            body = self._with_token(url, form, what, renew=True)
            code = error_code(body)
        if code is None:
            return body
        raise self.error(code, body, url, what)

    def _with_token(self, url: str, form: dict[str, str], what: str, *, renew: bool
                    ) -> dict[str, Any]:
        token = tokens.get(self.server, renew=renew)
        return _post(self.server, url, {**form, "token": token} if token else form, what=what)

    def error(self, code: int, body: Mapping[str, Any], url: str, what: str) -> KoopError:
        """Our error for an ArcGIS error JSON (its message kept for clients, the URL for logs)."""
        error = body.get("error") or {}
        message = str(error.get("message") or "").strip()
        details = [str(d) for d in (error.get("details") or []) if isinstance(d, (str, int))]
        log = (f"arcgis {self.server.name}: {what} at {redact_url(url)}: error {code} "
               f"{message!r} {details}")
        text = " ".join([message, *details]).lower()
        if code == 404 or "not found" in text or "does not exist" in text or \
                "invalid url" in text:
            return NotFoundError("The service or layer was not found on the ArcGIS server.",
                                 log_message=log)
        if code in (498, 499, 401, 403):
            return SourceAuthError(
                "The ArcGIS server refused access: its token is missing, invalid or expired, or "
                "the configured account may not read this service.", log_message=log)
        if code == 400:
            return _SourceBadRequest(message or "Unable to complete operation.",
                                     details=details[:5], log_message=log)
        return SourceError(f"The ArcGIS server failed ({code}).", log_message=log)

    # --- resources ------------------------------------------------------------------------

    def layers(self, seconds: float) -> dict[str, Any]:
        """``<service>/layers``: every layer and table with its fields, remembered ``seconds``.

        Pass-through requests need the layers' fields and capabilities each time; asking the
        server once a minute rather than on every request keeps proxying cheap.
        """
        key = "koop:arcgis:layers:" + hashlib.blake2b(
            f"{self.server.name}|{self.url}".encode(), digest_size=12).hexdigest()
        found = cache.get(key) if seconds > 0 else None
        if isinstance(found, dict):
            return found
        body = self.call("/layers", {}, what="layers")
        if not isinstance(body.get("layers", []), list) or not isinstance(
                body.get("tables", []), list):
            raise SourceFormatError("The ArcGIS server's layer list could not be read.",
                                    log_message=f"arcgis {self.server.name}: {self.url}/layers "
                                                "has no layers list")
        if seconds > 0:
            cache.set(key, body, timeout=seconds)
        return body


class _SourceBadRequest(BadRequestError):
    """The source refused the query's parameters (its code 400): the client's mistake."""
