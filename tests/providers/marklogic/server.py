"""A MarkLogic REST API instance on 127.0.0.1, from MarkLogic's REST reference, for the tests.

It speaks what the provider uses, as MarkLogic does:
- HTTP Digest authentication (RFC 7616: a 401 with ``WWW-Authenticate: Digest realm, nonce,
  opaque, qop="auth", algorithm``; the answer is checked, nonce counts must grow, nonces can
  be made stale) or Basic;
- ``POST /v1/search`` with a combined query (structured query + options: transform-results raw,
  sort-order, search-option), ``collection``/``directory``/``start``/``pageLength``/
  ``format=json``; answers ``{"total", "start", "page-length", "results": [{"uri", "content"}]}``;
  range and geospatial queries need the index to be "configured" (else XDMP-RANGEINDEX);
- ``POST /v1/rows`` with a serialized Optic plan (``{"$optic": ...}``): from-view, where,
  order-by, offset-limit, group-by with count/sum/avg/min/max, and the expressions the provider
  emits; ``column-types=header|rows``; column names qualified ``schema.view.column``;
- errors as ``{"errorResponse": {"statusCode", "status", "messageCode", "message"}}``.
It records every request (method, path, parameters, JSON body) in ``calls``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

REALM = "public"


class Failure(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class View:
    columns: list[tuple[str, str]]  # (name, type) e.g. ("depth", "xs:double")
    rows: list[dict[str, Any]]


@dataclass
class FakeMarkLogic:
    users: dict[str, str] = field(default_factory=lambda: {"reader": "s3cret-pw"})
    auth: str = "digest"  # digest | basic
    algorithm: str = "MD5"
    documents: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = field(default_factory=dict)
    views: dict[tuple[str, str], View] = field(default_factory=dict)
    range_indexes: set[str] = field(default_factory=set)  # JSON property names
    geo_pairs: set[str] = field(default_factory=set)  # parent properties with a pair index
    geo_paths: set[str] = field(default_factory=set)
    delay: float = 0.0  # before the answer's head
    body_delay: float = 0.0  # between the head and the body
    broken: bool = False
    calls: list[dict[str, Any]] = field(default_factory=list)
    challenges: int = 0
    _nonces: dict[str, int] = field(default_factory=dict)  # nonce -> last nc seen
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- HTTP -----------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes
               ) -> tuple[int, dict[str, str], bytes]:
        if self.delay:
            time.sleep(self.delay)
        parts = urlsplit(target)
        params = parse_qsl(parts.query, keep_blank_values=True)
        refusal = self.authenticate(method, target, headers.get("authorization", ""))
        if refusal is not None:
            return refusal
        try:
            data = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            return self.error(400, "REST-INVALIDPARAM", "body is not JSON")
        self.calls.append({"method": method, "path": parts.path, "params": params,
                           "body": data})
        if self.broken:
            return 200, {"Content-Type": "application/json"}, b'{"rows": 7'
        try:
            if method == "POST" and parts.path == "/v1/rows":
                answer = self.rows(data, dict(params))
            elif method == "POST" and parts.path == "/v1/search":
                answer = self.search(data, params)
            else:
                raise Failure(404, "RESTAPI-INVALIDREQ", f"no endpoint {parts.path}")
        except Failure as exc:
            return self.error(exc.status, exc.code, exc.message)
        return 200, {"Content-Type": "application/json"}, orjson.dumps(answer)

    @staticmethod
    def error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
        body = {"errorResponse": {"statusCode": status, "status": "Error", "messageCode": code,
                                  "message": f"{code}: {message}"}}
        return status, {"Content-Type": "application/json"}, orjson.dumps(body)

    # --- authentication ---------------------------------------------------------------------

    def challenge(self, stale: bool = False) -> tuple[int, dict[str, str], bytes]:
        nonce = os.urandom(16).hex()
        with self._lock:
            self._nonces[nonce] = 0
            self.challenges += 1
        header = (f'Digest realm="{REALM}", qop="auth", nonce="{nonce}", '
                  f'opaque="{os.urandom(8).hex()}", algorithm={self.algorithm}')
        if stale:
            header += ", stale=true"
        status, headers, body = self.error(401, "SEC-AUTH", "Unauthorized")
        return status, {**headers, "WWW-Authenticate": header}, body

    def expire_nonces(self) -> None:
        with self._lock:
            self._nonces.clear()

    def authenticate(self, method: str, uri: str, header: str
                     ) -> tuple[int, dict[str, str], bytes] | None:
        if self.auth == "basic":
            scheme, _, token = header.partition(" ")
            if scheme == "Basic":
                user, _, password = base64.b64decode(token).decode().partition(":")
                if self.users.get(user) == password:
                    return None
            status, headers, body = self.error(401, "SEC-AUTH", "Unauthorized")
            return status, {**headers, "WWW-Authenticate": f'Basic realm="{REALM}"'}, body
        scheme, _, rest = header.partition(" ")
        if scheme != "Digest":
            return self.challenge()
        values = {k.lower(): v.strip('"') for k, v in
                  re.findall(r'(\w+)=("[^"]*"|[^,\s]*)', rest)}
        nonce = values.get("nonce", "")
        with self._lock:
            last = self._nonces.get(nonce)
        if last is None:
            return self.challenge(stale=True)
        password = self.users.get(values.get("username", ""))
        if password is None or values.get("uri") != uri or values.get("qop") != "auth" \
                or values.get("algorithm", "MD5") != self.algorithm:
            return self.challenge()
        h = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[self.algorithm]

        def digest(text: str) -> str:
            return h(text.encode()).hexdigest()

        nc = int(values.get("nc", "0"), 16)
        user = values["username"]
        ha1, ha2 = digest(f"{user}:{REALM}:{password}"), digest(f"{method}:{uri}")
        expected = digest(f"{ha1}:{nonce}:{values.get('nc')}:{values.get('cnonce')}:auth:{ha2}")
        if expected != values.get("response") or nc <= last:
            return self.challenge()
        with self._lock:
            self._nonces[nonce] = nc
        return None

    # --- /v1/search -------------------------------------------------------------------------

    def search(self, body: Any, params: list[tuple[str, str]]) -> dict[str, Any]:
        query = dict(params)
        if query.get("format") != "json":
            raise Failure(406, "REST-UNACCEPTABLETYPE", "format=json expected here")
        combined = (body or {}).get("search") or {}
        options = combined.get("options") or {}
        if (options.get("transform-results") or {}).get("apply") != "raw":
            raise Failure(400, "TEST-RAW", "the test server returns raw results only")
        structured = combined.get("query") or {}
        collections = [v for k, v in params if k == "collection"]
        directory = query.get("directory")
        matched = []
        for uri, (content, in_collections) in sorted(self.documents.items()):
            if collections and not set(collections) & set(in_collections):
                continue
            if directory and not uri.startswith(directory):
                continue
            if not all(self.matches(q, uri, content, in_collections)
                       for q in structured.get("queries") or []):
                continue
            if combined.get("qtext") and not _has_word(content, combined["qtext"]):
                continue
            matched.append((uri, content))
        for sort in reversed(options.get("sort-order") or []):
            name = sort["json-property"]
            if name not in self.range_indexes:
                raise Failure(400, "XDMP-ELEMRIDXNOTFOUND",
                              f"No {sort.get('type')} range index for {name}")
            matched.sort(key=lambda item, n=name: _sort_key(item[1].get(n)),
                         reverse=sort.get("direction") == "descending")
        start = int(query.get("start", "1"))
        length = int(query.get("pageLength", "10"))
        page = matched[start - 1:start - 1 + length]
        return {"snippet-format": "raw", "total": len(matched), "start": start,
                "page-length": length,
                "results": [{"index": start + i, "uri": uri, "path": f'fn:doc("{uri}")',
                             "score": 0, "confidence": 0, "fitness": 0, "format": "json",
                             "mimetype": "application/json", "content": content}
                            for i, (uri, content) in enumerate(page)]}

    def matches(self, q: dict[str, Any], uri: str, doc: dict[str, Any],
                collections: tuple[str, ...]) -> bool:
        (kind, spec), = q.items()
        if kind == "and-query":
            return all(self.matches(x, uri, doc, collections) for x in spec["queries"])
        if kind == "or-query":
            return any(self.matches(x, uri, doc, collections) for x in spec["queries"])
        if kind == "not-query":
            return not self.matches(spec, uri, doc, collections)
        if kind == "collection-query":
            return bool(set(spec["uri"]) & set(collections))
        if kind == "directory-query":
            return any(uri.startswith(d) for d in spec["uri"])
        if kind == "term-query":
            return all(_has_word(doc, t) for t in spec["text"])
        if kind == "value-query":
            wanted = spec["text"]
            insensitive = "case-insensitive" in (spec.get("term-option") or [])
            for value in _property_values(doc, spec["json-property"]):
                if spec.get("type") == "number" and _is_number(value):
                    if any(float(value) == float(w) for w in wanted):
                        return True
                elif spec.get("type") == "string" and isinstance(value, str):
                    if any((value.lower() == str(w).lower()) if insensitive else value == w
                           for w in wanted):
                        return True
            return False
        if kind == "range-query":
            name = spec["json-property"]
            if name not in self.range_indexes:
                raise Failure(500, "XDMP-RANGEINDEX",
                              f"No {spec['type']} range index for {name}")
            compare = _OPERATORS[spec["range-operator"]]
            return any(_is_number(v) and any(compare(float(v), float(w)) for w in spec["value"])
                       for v in _property_values(doc, name))
        if kind == "geo-json-property-pair-query":
            parent = spec["parent-property"]
            if parent not in self.geo_pairs:
                raise Failure(500, "XDMP-GEOSPATIAL", f"No geospatial index for {parent}")
            for holder in _property_values(doc, parent):
                if isinstance(holder, dict) and _in_boxes(holder.get(spec["lat-property"]),
                                                          holder.get(spec["lon-property"]),
                                                          spec["box"]):
                    return True
            return False
        if kind == "geo-path-query":
            path = spec["path-index"]["text"]
            if path not in self.geo_paths:
                raise Failure(500, "XDMP-GEOSPATIAL", f"No geospatial path index {path}")
            node: Any = doc
            for step in path.strip("/").split("/"):
                node = node.get(step) if isinstance(node, dict) else None
            if isinstance(node, dict):
                return _in_boxes(node.get("lat"), node.get("lon"), spec["box"])
            return False
        raise Failure(400, "SEARCH-BADQUERY", f"unknown query {kind}")

    # --- /v1/rows ---------------------------------------------------------------------------

    def rows(self, body: Any, params: dict[str, str]) -> dict[str, Any]:
        try:
            operators = body["$optic"]["args"]
            assert body["$optic"]["fn"] == "operators"
        except (TypeError, KeyError, AssertionError):
            raise Failure(400, "OPTIC-INVALARGS", "expected an exported plan") from None
        first = operators[0]
        if first.get("fn") != "from-view":
            raise Failure(400, "OPTIC-INVALARGS", "the plan must start with from-view")
        schema, name = first["args"][0], first["args"][1]
        view = self.views.get((schema, name))
        if view is None:
            raise Failure(500, "SQL-TABLENOTFOUND", f"Unknown table: Table '{schema}.{name}' "
                                                    "not found")
        types = dict(view.columns)
        prefix = f"{schema}.{name}."
        rows = [dict(row) for row in view.rows]
        columns: list[tuple[str, str]] = [(prefix + c, t) for c, t in view.columns]
        qualified = True
        for step in operators[1:]:
            fn, args = step["fn"], step["args"]
            if fn == "where":
                rows = [r for r in rows if _truth(self.evaluate(args[0], r, types))]
            elif fn == "order-by":
                for key in reversed(args[0]):
                    descending = key["fn"] == "desc"
                    column = key["args"][0]
                    # Empty least: first ascending, last descending (as the engine).
                    rows.sort(key=lambda r, c=column: _sort_key(self.evaluate(c, r, types)),
                              reverse=descending)
            elif fn == "offset-limit":
                offset, limit = args
                rows = rows[offset:offset + limit]
            elif fn == "group-by":
                rows, columns = self.group(args[0], args[1], rows, types)
                types = dict(columns)  # later operators see the groups' columns only
                qualified = False
            else:
                raise Failure(400, "OPTIC-INVALARGS", f"operator {fn} is not supported here")
        out_rows = []
        for row in rows:
            out = {}
            for name_, kind in columns:
                short = name_.removeprefix(prefix) if qualified else name_
                value = row.get(short)
                if params.get("column-types") == "header":
                    out[name_] = value
                else:
                    out[name_] = {"type": "null" if value is None else kind, "value": value}
            out_rows.append(out)
        if params.get("column-types") == "header":
            return {"columns": [{"name": n, "type": t} for n, t in columns], "rows": out_rows}
        return {"columns": [{"name": n} for n, _ in columns], "rows": out_rows}

    def group(self, keys: list[Any] | None, aggregates: list[Any], rows: list[dict[str, Any]],
              types: dict[str, str]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        key_names = [k["args"][0] for k in keys or []]
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(tuple(row.get(k) for k in key_names), []).append(row)
        if not key_names and not groups:
            groups[()] = []
        out = []
        columns = [(k, types[k]) for k in key_names]
        for aggregate in aggregates:
            alias = aggregate["args"][0]["args"][0]
            kind = aggregate["fn"]
            columns.append((alias, "xs:unsignedLong" if kind == "count" else "xs:double"))
        for key, members in groups.items():
            row = dict(zip(key_names, key, strict=True))
            for aggregate in aggregates:
                alias = aggregate["args"][0]["args"][0]
                kind = aggregate["fn"]
                column = aggregate["args"][1] if len(aggregate["args"]) > 1 else None
                values = [self.evaluate(column, r, types) for r in members] if column else None
                present = [v for v in values if v is not None] if values is not None else None
                if kind == "count":
                    row[alias] = len(members) if present is None else len(present)
                elif not present:
                    row[alias] = None
                elif kind == "sum":
                    row[alias] = sum(present)
                elif kind == "avg":
                    row[alias] = sum(present) / len(present)
                elif kind == "min":
                    row[alias] = min(present)
                elif kind == "max":
                    row[alias] = max(present)
                else:
                    raise Failure(400, "OPTIC-INVALARGS", f"aggregate {kind}")
            out.append(row)
        return out, columns

    def evaluate(self, node: Any, row: dict[str, Any], types: dict[str, str]) -> Any:
        """An Optic expression on one row; None is the empty sequence."""
        if not isinstance(node, dict):
            return node
        ns, fn, args = node["ns"], node["fn"], node["args"]
        if ns == "op" and fn == "col":
            if args[0] not in types:
                raise Failure(400, "SQL-NOCOLUMN", f"Column not found: {args[0]}")
            value = row.get(args[0])
            if value is not None and types[args[0]] in ("xs:dateTime", "xs:date"):
                return _datetime(value)
            return value
        if ns == "op" and fn == "is-defined":
            return self.evaluate(args[0], row, types) is not None
        if ns == "op" and fn in ("and", "or"):
            values = [_truth(self.evaluate(a, row, types)) for a in args]
            return all(values) if fn == "and" else any(values)
        if ns == "op" and fn == "not":
            return not _truth(self.evaluate(args[0], row, types))
        values = [self.evaluate(a, row, types) for a in args]
        if ns == "op" and fn in _OPTIC_COMPARE:
            a, b = values
            if a is None or b is None:
                return False
            if isinstance(a, str) != isinstance(b, str):
                raise Failure(400, "XDMP-CAST", f"cannot compare {a!r} with {b!r}")
            return _OPTIC_COMPARE[fn](a, b)
        if ns == "op" and fn in _ARITHMETIC:
            if None in values:
                return None
            try:
                return _ARITHMETIC[fn](*values)
            except ZeroDivisionError:
                raise Failure(400, "FOAR0001", "Division by zero") from None
        if ns == "xs" and fn == "dateTime":
            return None if values[0] is None else _datetime(values[0])
        if ns == "fn" and fn in _FUNCTIONS:
            if values and values[0] is None and fn != "concat":
                return None
            return _FUNCTIONS[fn](*values)
        raise Failure(400, "OPTIC-INVALARGS", f"{ns}:{fn} is not supported here")


def _truth(value: Any) -> bool:
    return bool(value) if value is not None else False


def _datetime(value: Any) -> dt.datetime:
    text = str(value)
    if len(text) == 10:
        text += "T00:00:00Z"
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _flags(flags: str) -> int:
    return (re.IGNORECASE if "i" in flags else 0) | (re.DOTALL if "s" in flags else 0)


def _substring(text: str, start: float, length: float | None = None) -> str:
    # XQuery fn:substring: characters at positions p with round(start) <= p <
    # round(start) + round(length), counting from 1.
    first = round(start)
    last = math.inf if length is None else first + round(length)
    return "".join(c for i, c in enumerate(text, 1) if first <= i < last)


_OPTIC_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b}
_ARITHMETIC: dict[str, Callable[..., Any]] = {
    "add": lambda a, b: a + b, "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b, "divide": lambda a, b: a / b,
    "modulo": lambda a, b: math.fmod(a, b)}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "lower-case": lambda s: s.lower(), "upper-case": lambda s: s.upper(),
    "string-length": len, "abs": abs, "ceiling": math.ceil, "floor": math.floor,
    "matches": lambda s, pattern, flags="": re.search(pattern, s, _flags(flags)) is not None,
    "substring": _substring,
    "concat": lambda *parts: "".join("" if p is None else str(p) for p in parts),
}
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "LT": lambda a, b: a < b, "LE": lambda a, b: a <= b, "GT": lambda a, b: a > b,
    "GE": lambda a, b: a >= b, "EQ": lambda a, b: a == b, "NE": lambda a, b: a != b}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, 0) if value is None else (1, value)


def _property_values(doc: Any, name: str) -> Iterator[Any]:
    """Every value of a property ``name`` at any depth (json-property matches anywhere)."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == name:
                if isinstance(value, list):
                    yield from value
                else:
                    yield value
            yield from _property_values(value, name)
    elif isinstance(doc, list):
        for item in doc:
            yield from _property_values(item, name)


def _has_word(doc: Any, word: str) -> bool:
    return word.lower() in orjson.dumps(doc).decode().lower()


def _in_boxes(lat: Any, lon: Any, boxes: list[dict[str, float]]) -> bool:
    if not (_is_number(lat) and _is_number(lon)):
        return False
    return any(b["south"] <= lat <= b["north"] and b["west"] <= lon <= b["east"]
               for b in boxes)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # noqa: N802
        self._answer("POST")

    def do_GET(self) -> None:  # noqa: N802
        self._answer("GET")

    def _answer(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.seen_headers.append(headers)
        status, out_headers, out = self.server.fake.handle(method, self.path, headers, body)
        try:
            self.send_response(status)
            for key, value in out_headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            if self.server.fake.body_delay:  # the head at once, the body late
                self.wfile.flush()
                time.sleep(self.server.fake.body_delay)
            self.wfile.write(out)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # concurrent clients in a test
    fake: FakeMarkLogic
    seen_headers: list[dict[str, str]]


class MarkLogicServer:
    """``with MarkLogicServer(fake) as server: server.url`` on 127.0.0.1, a free port."""

    def __init__(self, fake: FakeMarkLogic) -> None:
        self.fake = fake
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = fake
        self._server.seen_headers = []
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def seen_headers(self) -> list[dict[str, str]]:
        return self._server.seen_headers

    def __enter__(self) -> MarkLogicServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
