"""Google's token endpoint and the GA4 Data API's runReport, on 127.0.0.1, from their references.

    POST /token                                   OAuth 2.0 JWT bearer grant (RFC 7523)
      grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<RS256 JWT>
      -> {"access_token", "expires_in", "token_type": "Bearer"}
      -> 400 {"error": "invalid_grant", "error_description": ...}
    POST /v1beta/properties/{id}:runReport        Authorization: Bearer <access token>
      {"dateRanges", "dimensions", "metrics", "dimensionFilter", "orderBys", "limit", "offset"}
      -> {"dimensionHeaders", "metricHeaders", "rows", "rowCount", "metadata", "kind"}
      -> {"error": {"code", "message", "status"}}: 400 INVALID_ARGUMENT, 401 UNAUTHENTICATED,
         403 PERMISSION_DENIED, 429 RESOURCE_EXHAUSTED

The token endpoint checks the assertion as Google does: the signature against the account's
public key, ``iss``, ``scope``, ``aud`` and a lifetime of at most an hour. runReport checks the
token, the property's users, the request's names and dates, filters, aggregates, orders and
pages the rows it holds.
"""

from __future__ import annotations

import base64
import re
import secrets
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

SCOPE = "https://www.googleapis.com/auth/analytics.readonly"
METRICS = {"activeUsers": "TYPE_INTEGER", "sessions": "TYPE_INTEGER",
           "screenPageViews": "TYPE_INTEGER", "engagementRate": "TYPE_FLOAT"}
DIMENSIONS = {"country", "countryId", "region", "city", "cityId", "deviceCategory"}
DATE = re.compile(r"^(\d{4}-\d{2}-\d{2}|today|yesterday|\d+daysAgo)$")
REPORT = re.compile(r"^/v1beta/properties/(\d+):runReport$")


@dataclass
class Visit:
    """One row of the property's data before aggregation."""

    countryId: str  # noqa: N815 - GA's names
    country: str
    region: str
    city: str
    cityId: str  # noqa: N815
    deviceCategory: str = "desktop"  # noqa: N815
    metrics: dict[str, float] = field(default_factory=dict)


class GAError(Exception):
    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FakeGoogle:
    """The server; ``accounts`` maps an e-mail to (key id, public key), ``properties`` an id to
    the e-mails that may read it."""

    def __init__(self) -> None:
        self.accounts: dict[str, tuple[str, Any]] = {}
        self.properties: dict[str, set[str]] = {}
        self.visits: list[Visit] = []
        self.token_lifetime = 3600
        self.quota: int | None = None  # runReport calls left; None: no limit
        self.delay = 0.0  # seconds runReport waits before answering
        self.garbage: bytes | None = None  # runReport answers this (HTTP 200) instead
        self.issued: dict[str, tuple[str, float]] = {}  # token -> (account, expiry)
        self.every_token: list[str] = []  # revoked ones too
        self.token_requests: list[dict[str, Any]] = []  # decoded claims of each assertion
        self.reports: list[dict[str, Any]] = []  # body of each runReport call
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path == "/token":
                    status, answer = fake.token(body)
                elif match := REPORT.match(self.path):
                    time.sleep(fake.delay)
                    status, answer = fake.run_report(match[1], self.headers, body)
                    if fake.garbage is not None:
                        status, answer = 200, fake.garbage
                else:
                    status, answer = 404, {"error": {"code": 404, "message": "Not found",
                                                     "status": "NOT_FOUND"}}
                data = answer if isinstance(answer, bytes) else orjson.dumps(answer)
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def token_url(self) -> str:
        return f"{self.base}/token"

    @property
    def api_url(self) -> str:
        return f"{self.base}/v1beta"

    def start(self) -> FakeGoogle:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- the token endpoint ------------------------------------------------------------------

    def token(self, body: bytes) -> tuple[int, dict[str, Any]]:
        form = dict(parse_qsl(body.decode()))
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type",
                         "error_description": "Invalid grant_type: " + form.get("grant_type", "")}
        try:
            head, claims_part, signature = form["assertion"].split(".")
            header = orjson.loads(_unb64(head))
            claims = orjson.loads(_unb64(claims_part))
        except (KeyError, ValueError):
            return 400, {"error": "invalid_request", "error_description": "Invalid JWT."}
        with self.lock:
            self.token_requests.append({"header": header, "claims": claims})
        account = self.accounts.get(claims.get("iss", ""))
        if header.get("alg") != "RS256" or account is None:
            return 400, {"error": "invalid_grant",
                         "error_description": "Invalid grant: account not found"}
        key_id, public_key = account
        try:
            public_key.verify(_unb64(signature), f"{head}.{claims_part}".encode(),
                              padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        if header.get("kid") not in (None, key_id):
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        if claims.get("aud") != self.token_url:
            return 400, {"error": "invalid_grant",
                         "error_description": "Invalid JWT: Failed audience check."}
        if SCOPE not in str(claims.get("scope", "")).split():
            return 400, {"error": "invalid_scope", "error_description": "Invalid OAuth scope."}
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if (not isinstance(iat, int) or not isinstance(exp, int) or exp - iat > 3600
                or exp <= now or iat > now + 60):
            return 400, {"error": "invalid_grant", "error_description": (
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                "reasonable timeframe. Check your iat and exp values in the JWT claim.")}
        token = "ya29." + secrets.token_urlsafe(40)
        with self.lock:
            self.issued[token] = (claims["iss"], now + self.token_lifetime)
            self.every_token.append(token)
        return 200, {"access_token": token, "expires_in": self.token_lifetime,
                     "token_type": "Bearer"}

    def revoke_tokens(self) -> None:
        with self.lock:
            self.issued.clear()

    # -- runReport ---------------------------------------------------------------------------

    def run_report(self, property_id: str, headers: Any, body: bytes
                   ) -> tuple[int, dict[str, Any]]:
        try:
            return 200, self._report(property_id, headers, body)
        except GAError as exc:
            return exc.code, {"error": {"code": exc.code, "message": exc.message,
                                        "status": exc.status}}

    def _report(self, property_id: str, headers: Any, body: bytes) -> dict[str, Any]:
        auth = headers.get("Authorization") or ""
        issued = self.issued.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") \
            else None
        if issued is None or issued[1] < time.time():
            raise GAError(401, "UNAUTHENTICATED", "Request had invalid authentication "
                          "credentials. Expected OAuth 2 access token, login cookie or other "
                          "valid authentication credential.")
        if issued[0] not in self.properties.get(property_id, set()):
            raise GAError(403, "PERMISSION_DENIED", "User does not have sufficient permissions "
                          "for this property.")
        with self.lock:
            if self.quota is not None:
                if self.quota <= 0:
                    raise GAError(429, "RESOURCE_EXHAUSTED", "Exhausted property tokens per "
                                  "day quota.")
                self.quota -= 1
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise GAError(400, "INVALID_ARGUMENT", "Invalid JSON payload received.") from None
        with self.lock:
            self.reports.append(request)
        ranges = request.get("dateRanges") or []
        if not ranges or not all(DATE.match(r.get("startDate", "")) and
                                 DATE.match(r.get("endDate", "")) for r in ranges):
            raise GAError(400, "INVALID_ARGUMENT", "Invalid date range.")
        dims = [d.get("name") for d in request.get("dimensions") or []]
        mets = [m.get("name") for m in request.get("metrics") or []]
        for name in dims:
            if name not in DIMENSIONS:
                raise GAError(400, "INVALID_ARGUMENT", f"Field {name} is not a valid dimension. "
                              "For a list of valid dimensions and metrics, see "
                              "https://developers.google.com/analytics/devguides/reporting/"
                              "data/v1/api-schema")
        for name in mets:
            if name not in METRICS:
                raise GAError(400, "INVALID_ARGUMENT", f"Field {name} is not a valid metric. "
                              "For a list of valid dimensions and metrics, see "
                              "https://developers.google.com/analytics/devguides/reporting/"
                              "data/v1/api-schema")
        if not mets:
            raise GAError(400, "INVALID_ARGUMENT", "At least one metric is required.")
        limit, offset = int(request.get("limit", 10000)), int(request.get("offset", 0))
        if limit <= 0 or limit > 250000 or offset < 0:
            raise GAError(400, "INVALID_ARGUMENT", "limit must be positive and at most 250000.")
        visits = [v for v in self.visits if _keep(v, request.get("dimensionFilter"))]
        totals: dict[tuple[str, ...], dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for visit in visits:
            key = tuple(getattr(visit, name) for name in dims)
            for name in mets:
                totals[key][name] += visit.metrics.get(name, 0)
        keys = list(totals)
        for order in reversed(request.get("orderBys") or []):
            name = (order.get("dimension") or {}).get("dimensionName")
            if name in dims:
                column = dims.index(name)
                keys.sort(key=lambda k: k[column], reverse=bool(order.get("desc")))
        page = keys[offset:offset + limit]
        answer: dict[str, Any] = {
            "dimensionHeaders": [{"name": name} for name in dims],
            "metricHeaders": [{"name": name, "type": METRICS[name]} for name in mets],
            "metadata": {"currencyCode": "USD", "timeZone": "Etc/UTC"},
            "kind": "analyticsData#runReport",
        }
        if page:  # proto3 JSON: empty lists and zero counts are left out
            answer["rows"] = [{
                "dimensionValues": [{"value": value} for value in key],
                "metricValues": [{"value": _text(totals[key][name], METRICS[name])}
                                 for name in mets]} for key in page]
        if keys:
            answer["rowCount"] = len(keys)
        return answer


def _text(value: float, kind: str) -> str:
    return str(int(value)) if kind == "TYPE_INTEGER" else repr(float(value))


def _keep(visit: Visit, expression: dict[str, Any] | None) -> bool:
    """A FilterExpression (andGroup, orGroup, notExpression, filter) on one visit."""
    if not expression:
        return True
    if "andGroup" in expression:
        return all(_keep(visit, e) for e in expression["andGroup"].get("expressions", []))
    if "orGroup" in expression:
        return any(_keep(visit, e) for e in expression["orGroup"].get("expressions", []))
    if "notExpression" in expression:
        return not _keep(visit, expression["notExpression"])
    condition = expression.get("filter") or {}
    name = condition.get("fieldName")
    if name not in DIMENSIONS:
        raise GAError(400, "INVALID_ARGUMENT", f"Field {name} is not a valid dimension.")
    value = getattr(visit, name)
    if "stringFilter" in condition:
        wanted = condition["stringFilter"]
        sensitive = wanted.get("caseSensitive", False)
        a, b = (value, wanted.get("value", "")) if sensitive else (
            value.lower(), str(wanted.get("value", "")).lower())
        kind = wanted.get("matchType", "EXACT")
        return {"EXACT": a == b, "BEGINS_WITH": a.startswith(b), "ENDS_WITH": a.endswith(b),
                "CONTAINS": b in a}.get(kind, False)
    if "inListFilter" in condition:
        return value in condition["inListFilter"].get("values", [])
    raise GAError(400, "INVALID_ARGUMENT", "Unsupported filter.")
