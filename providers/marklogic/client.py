"""A MarkLogic REST API client over ``koop_app.net.request``: Digest or Basic auth, error bodies.

MarkLogic's REST instances use HTTP Digest authentication by default (RFC 7616): the first
request is answered 401 with ``WWW-Authenticate: Digest realm=..., nonce=..., qop="auth"``, and
the client answers the challenge with a hash of the credentials, the nonce and the request. The
challenge is kept per server (in this process) and reused with a growing nonce count, so only
the first request, or one after the server forgot its nonce (``stale=true``), costs a round trip.

Errors come as ``{"errorResponse": {"statusCode", "status", "messageCode", "message"}}``; they are
turned into our error classes with MarkLogic's code and message (never the password, never the
URL outside the log).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from koop_app.errors import (
    ProviderError,
    SourceAuthError,
    SourceError,
    SourceFormatError,
    SourceNotFoundError,
    SourceRateLimitedError,
)
from koop_app.net import Response, request

logger = logging.getLogger(__name__)

# Statuses read here rather than raised by koop_app.net: MarkLogic explains them in the body.
READ_STATUSES = frozenset({400, 401, 403, 404, 405, 406, 409, 412, 429, 500, 501, 503, 504})
_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256, "SHA-512-256": None}
_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?')


@dataclass(frozen=True)
class Server:
    """One configured MarkLogic REST instance (a KOOP["CONNECTIONS"]["marklogic"] entry)."""

    url: str
    username: str = ""
    password: str = ""
    auth: str = "digest"  # digest | basic | none
    database: str = ""

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> Server:
        url = str(settings.get("url") or "").rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ProviderError(500, "The MarkLogic server is not configured (no url).",
                                log_message="KOOP['CONNECTIONS']['marklogic'] entry lacks "
                                            "an http(s) url")
        auth = str(settings.get("auth") or ("digest" if settings.get("username") else "none"))
        if auth.lower() not in ("digest", "basic", "none"):
            raise ProviderError(500, "The MarkLogic server is not configured right.",
                                log_message=f"marklogic connection auth {auth!r} is not "
                                            "digest, basic or none")
        return cls(url, str(settings.get("username") or ""), str(settings.get("password") or ""),
                   auth.lower(), str(settings.get("database") or ""))


@dataclass
class _Challenge:
    realm: str
    nonce: str
    opaque: str | None
    algorithm: str
    qop: str | None
    count: int = 0


# Digest challenges by (server URL, user): reused with nc + 1 until the server says stale.
_challenges: dict[tuple[str, str], _Challenge] = {}
_lock = threading.Lock()


def parse_challenge(header: str) -> _Challenge | None:
    """A ``WWW-Authenticate: Digest ...`` header's parameters, or None if it is not Digest
    with an algorithm and qop we speak (MD5 or SHA-256, qop=auth or none)."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    params: dict[str, str] = {}
    for match in _PARAM.finditer(rest):
        value = match.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[match.group(1).lower()] = value
    algorithm = params.get("algorithm", "MD5").upper()
    if algorithm not in ("MD5", "SHA-256") or "nonce" not in params:
        return None
    qops = [q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()]
    if qops and "auth" not in qops:
        return None  # auth-int only: not offered by MarkLogic, not spoken here
    return _Challenge(params.get("realm", ""), params["nonce"], params.get("opaque"), algorithm,
                      "auth" if qops else None)


def digest_authorization(challenge: _Challenge, method: str, uri: str, username: str,
                         password: str, *, cnonce: str | None = None) -> str:
    """The ``Authorization: Digest ...`` answer to ``challenge`` (RFC 7616 section 3.4)."""
    hasher = _HASHES[challenge.algorithm]
    assert hasher is not None

    def h(text: str) -> str:
        return hasher(text.encode("utf-8")).hexdigest()

    challenge.count += 1
    nc = f"{challenge.count:08x}"
    cnonce = cnonce or os.urandom(12).hex()
    ha1 = h(f"{username}:{challenge.realm}:{password}")
    ha2 = h(f"{method}:{uri}")
    if challenge.qop:
        response = h(f"{ha1}:{challenge.nonce}:{nc}:{cnonce}:{challenge.qop}:{ha2}")
    else:
        response = h(f"{ha1}:{challenge.nonce}:{ha2}")
    parts = [f'username="{_quoted(username)}"', f'realm="{_quoted(challenge.realm)}"',
             f'nonce="{_quoted(challenge.nonce)}"', f'uri="{_quoted(uri)}"',
             f"algorithm={challenge.algorithm}", f'response="{response}"']
    if challenge.opaque is not None:
        parts.append(f'opaque="{_quoted(challenge.opaque)}"')
    if challenge.qop:
        parts += [f"qop={challenge.qop}", f"nc={nc}", f'cnonce="{cnonce}"']
    return "Digest " + ", ".join(parts)


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


class Client:
    """Calls to one MarkLogic REST instance: ``client.call("POST", "/v1/rows", params, body)``."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def call(self, method: str, path: str, params: Sequence[tuple[str, str]] = (),
             body: bytes | None = None, content_type: str = "application/json") -> Any:
        """The decoded JSON answer of ``method path?params``; a KoopError on any failure."""
        query = list(params)
        if self.server.database:
            query.append(("database", self.server.database))
        target = path + ("?" + urlencode(query) if query else "")
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        answer = self._send(method, target, headers, body)
        if answer.status >= 300:
            raise self._error(method, path, answer)
        try:
            return orjson.loads(answer.body) if answer.body.strip() else {}
        except orjson.JSONDecodeError:
            raise SourceFormatError("MarkLogic did not answer JSON.",
                                    log_message=f"{method} {self.server.url}{path}: "
                                                f"not JSON: {answer.body[:200]!r}") from None

    def _send(self, method: str, target: str, headers: dict[str, str],
              body: bytes | None) -> Response:
        url = self.server.url + target
        uri = urlsplit(self.server.url).path + target  # what the Digest "uri" names
        auth = self.server.auth
        if auth == "basic":
            token = base64.b64encode(
                f"{self.server.username}:{self.server.password}".encode()).decode()
            return request(method, url, headers={**headers, "Authorization": f"Basic {token}"},
                           body=body, accept=READ_STATUSES)
        if auth == "none":
            return request(method, url, headers=headers, body=body, accept=READ_STATUSES)
        key = (self.server.url, self.server.username)
        with _lock:
            kept = _challenges.get(key)
            authorization = None if kept is None else digest_authorization(
                kept, method, uri, self.server.username, self.server.password)
        answer = self._attempt(method, url, headers, body, authorization)
        # A kept nonce may be refused for reasons of its own (expired; another thread's request
        # with a higher count got there first): answer a fresh challenge, used by this call
        # alone until it succeeds, so that a refusal of it can only mean wrong credentials.
        for _ in range(2):
            if answer.status != 401:
                return answer
            offered = answer.headers.get("www-authenticate", "")
            fresh = parse_challenge(offered)
            if fresh is None:
                raise SourceAuthError(
                    "MarkLogic asked for an authentication scheme we do not speak; set the "
                    "connection's auth to basic or digest as the app server is configured.",
                    log_message=f"{method} {self.server.url}{target}: 401 with {offered!r}")
            authorization = digest_authorization(fresh, method, uri, self.server.username,
                                                 self.server.password)
            answer = self._attempt(method, url, headers, body, authorization)
            if answer.status != 401:
                with _lock:
                    _challenges[key] = fresh
                return answer
            if "stale=true" not in answer.headers.get("www-authenticate", "").lower().replace(
                    '"', ""):
                break  # our answer to a nonce just given was refused: wrong credentials
        raise SourceAuthError(
            "MarkLogic refused the connection's credentials (HTTP 401).",
            log_message=f"{method} {self.server.url}{target}: 401 for user "
                        f"{self.server.username!r}")

    @staticmethod
    def _attempt(method: str, url: str, headers: dict[str, str], body: bytes | None,
                 authorization: str | None) -> Response:
        sent = dict(headers)
        if authorization is not None:
            sent["Authorization"] = authorization
        return request(method, url, headers=sent, body=body, accept=READ_STATUSES)

    def _error(self, method: str, path: str, answer: Response) -> ProviderError:
        code, text = _error_body(answer.body)
        where = f"{method} {self.server.url}{path}: HTTP {answer.status} {code} {text}"
        said = f"MarkLogic: {code}: {text}" if code else f"MarkLogic answered HTTP {answer.status}"
        if answer.status == 401:
            return SourceAuthError("MarkLogic refused the connection's credentials (HTTP 401).",
                                   log_message=where)
        if answer.status == 403:
            return SourceAuthError(f"MarkLogic refused access (HTTP 403). {said}",
                                   log_message=where)
        if answer.status == 429 or (answer.status == 503 and not code):
            return SourceRateLimitedError(f"MarkLogic is busy (HTTP {answer.status}); try "
                                          "again later.", log_message=where)
        if answer.status == 404 or code in NOT_FOUND_CODES:
            return SourceNotFoundError(f"{said}" if code else "MarkLogic: not found (HTTP 404).",
                                       log_message=where)
        return SourceError(f"{said}{_hint(code)}", log_message=where)


NOT_FOUND_CODES = {"SQL-TABLENOTFOUND", "SQL-NOCOLUMN", "XDMP-UNDFUN", "REST-INVALIDPARAM-VIEW",
                   "XDMP-NODB", "RESTAPI-NODOCUMENT"}
_HINTS = {
    "XDMP-RANGEINDEX": " (a range query needs a range index: remove the property from the "
                       "layer's range_indexes or add the index in MarkLogic)",
    "XDMP-GEOSPATIAL": " (a geospatial query needs a geospatial index: fix the layer's "
                       "geo_index option or add the index in MarkLogic)",
    "SQL-TABLENOTFOUND": " (the view is not defined by a template: check the layer's view)",
    "SEC-PRIV": " (the connection's user lacks a privilege, e.g. rest-reader)",
}


def _hint(code: str) -> str:
    return next((hint for prefix, hint in _HINTS.items() if code.startswith(prefix)), "")


def _error_body(body: bytes) -> tuple[str, str]:
    """MarkLogic's messageCode and message, short, from an error body (JSON or not)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "", ""
    inner = data.get("errorResponse") if isinstance(data, dict) else None
    if not isinstance(inner, dict):
        return "", ""
    code = str(inner.get("messageCode") or "")[:60]
    message = " ".join(str(inner.get("message") or "").split())
    return code, (message if len(message) <= 300 else message[:297] + "...")


def forget_challenges() -> None:
    """Drop the kept Digest challenges (tests; a server restart makes them stale anyway)."""
    with _lock:
        _challenges.clear()
