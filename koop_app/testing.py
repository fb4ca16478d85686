"""Helpers for tests: a scripted HTTP source on 127.0.0.1 run in a thread, a throwaway Redis,
a guard against connections off loopback, a resolver stub, and ``GuardedProvider``, a provider
with its own token security (Koop's authorization plugins).

    with SourceServer() as server:
        server.route("/data.geojson", body=b'{"type": "FeatureCollection", "features": []}')
        server.route("/slow", body=b"{}", delay=5)
        server.route("/fail", status=500)
        read_source(server.url("/data.geojson"))

    with LoopbackGuard() as guard, StubResolver({"data.test": ["10.0.0.1"]}) as dns:
        ...                        # a connect() to 10.0.0.1 would fail the test; no real DNS
        assert dns.lookups["data.test"] == 1 and not guard.attempts
"""

from __future__ import annotations

import secrets
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from django.http import HttpRequest, JsonResponse

from koop_app.errors import ProviderError
from koop_app.provider import Controller, Provider, ProviderRequest, Route


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Script:
    """How the server answers one path."""

    status: int = 200
    # bytes, or a function of the query string's parameters returning them
    body: bytes | Callable[[dict[str, str]], bytes] = b""
    content_type: str = "application/json"
    delay: float = 0.0  # seconds before the status line
    chunks: Callable[[], Iterator[bytes]] | None = None  # stream without Content-Length
    chunk_delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up (timeouts under test) are expected, not errors."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class SourceServer:
    """A threaded HTTP server whose paths answer as scripted; counts requests per path.

    ``ssl_context`` (server side, with its certificate loaded) makes it an https server;
    ``requests`` keeps each request's headers (lowercase names), ``method`` and ``body`` in
    arrival order; GET, POST, PUT and DELETE answer alike.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.scripts: dict[str, Script] = {}
        self.hits: dict[str, int] = {}
        self.requests: list[dict[str, Any]] = []
        self.ssl_context = ssl_context
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append({"path": path, "method": self.command, **{
                    k.lower(): v for k, v in self.headers.items()}, "body": body})
                script = server.scripts.get(path)
                if script is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if script.delay:
                    time.sleep(script.delay)
                self._answer(script)

            do_POST = do_PUT = do_DELETE = do_GET

            def _answer(self, script: Script) -> None:
                self.send_response(script.status)
                self.send_header("Content-Type", script.content_type)
                for key, value in script.headers.items():
                    self.send_header(key, value)
                if script.chunks is not None:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for chunk in script.chunks():
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        self.wfile.flush()
                        if script.chunk_delay:
                            time.sleep(script.chunk_delay)
                    self.wfile.write(b"0\r\n\r\n")
                    return
                query = dict(parse_qsl(urlsplit(self.path).query))
                body = script.body(query) if callable(script.body) else script.body
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def route(self, path: str, **script: object) -> str:
        self.scripts[path] = Script(**script)  # type: ignore[arg-type]
        return self.url(path)

    def route_slowly(self, path: str, body: bytes, seconds: float, pieces: int = 10) -> str:
        """A route taking ``seconds`` to send ``body``, in pieces (each read stays short)."""
        step = len(body) // pieces + 1

        def chunks():
            for start in range(0, len(body), step):
                yield body[start:start + step]

        return self.route(path, chunks=chunks, chunk_delay=seconds / pieces)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def start(self) -> SourceServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SourceServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisServer:
    """A throwaway ``redis-server`` on 127.0.0.1 (no persistence), for tests.

        with RedisServer() as redis:
            settings.CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache",
                                           "LOCATION": redis.url}}
    """

    def __init__(self, executable: str = "redis-server") -> None:
        self.executable = executable
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.port = free_port()
        return self.start_on_same_port()

    def start_on_same_port(self) -> RedisServer:
        """(Re)start on the port chosen before: clients reconnect as to a restarted server."""
        self._process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class GuardedController(Controller):
    def item(self, request: HttpRequest, id: str) -> JsonResponse:
        return JsonResponse({"id": id, "provider": self.provider.name})


class GuardedProvider(Provider):
    """A provider that checks its own users and tokens, as a Koop authorization plugin does.

    Declaring ``get_authentication_specification`` hands its namespace's ``generateToken`` to
    ``authenticate`` and the access checks of its datasets to ``authorize``. Users are the
    class's ``users``; tokens are random and kept in memory; ``calls`` records the hooks run.

        KOOP = {"PROVIDERS": [..., "koop_app.testing.GuardedProvider"]}
    """

    name = "guarded"
    users: ClassVar[dict[str, str]] = {"carol": "open sesame"}
    tokens: ClassVar[dict[str, float]] = {}  # token -> expiry (epoch seconds)
    calls: ClassVar[list[str]] = []
    token_seconds = 600
    routes = (Route("items/<id>", "item"),)
    controller_class = GuardedController

    def get_authentication_specification(self) -> dict[str, Any]:
        return {"useHttp": True}

    def authenticate(self, request: ProviderRequest) -> dict[str, Any]:
        self.calls.append("authenticate")
        username = request.query.get("username", "")
        if not username or self.users.get(username) != request.query.get("password"):
            raise ProviderError(401, "Invalid credentials")
        token = secrets.token_urlsafe(24)
        expires = time.time() + self.token_seconds
        self.tokens[token] = expires
        return {"token": token, "expires": int(expires * 1000)}

    def authorize(self, request: ProviderRequest) -> None:
        self.calls.append("authorize")
        token = request.query.get("token")
        http = request.http_request
        if not token and http is not None:
            scheme, _, value = http.META.get("HTTP_AUTHORIZATION", "").partition(" ")
            token = value if scheme.lower() == "bearer" else None
        if not token:
            raise ProviderError(401, "No token")
        if self.tokens.get(token, 0) <= time.time():
            raise ProviderError(401, "Unknown or expired token")

    def get_data(self, request: ProviderRequest) -> dict[str, Any]:
        self.calls.append("get_data")
        return {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"name": "secret"},
             "geometry": {"type": "Point", "coordinates": [1.0, 2.0]}}]}
class NonLoopbackConnection(AssertionError):
    """A test tried to connect (or resolve a name) off loopback."""


def _is_loopback(host: str) -> bool:
    try:
        address = ip_address(host.split("%", 1)[0])
    except ValueError:
        return host == "localhost"
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _is_literal_or_local(host: str) -> bool:
    if host in ("", "localhost", "localhost."):
        return True
    try:
        ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


class LoopbackGuard:
    """Fails any connection to an address off loopback, and any name lookup that could leave it.

    Patches ``socket.socket.connect``/``connect_ex`` (every client ends there: http.client,
    requests, redis, ssl) and ``socket.getaddrinfo`` (names other than "localhost" would go to
    a DNS server; IP literals, even 0.0.0.0 for a bind, are looked up locally). Attempts raise
    NonLoopbackConnection, which no network code catches, and are kept in ``attempts`` for a
    check after the test, in case a thread swallowed the exception.
    """

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._saved: dict[str, Any] = {}

    def __enter__(self) -> LoopbackGuard:
        guard = self
        connect, connect_ex = socket.socket.connect, socket.socket.connect_ex
        getaddrinfo = socket.getaddrinfo
        self._saved = {"connect": connect, "connect_ex": connect_ex, "getaddrinfo": getaddrinfo}

        def guarded_connect(sock: socket.socket, address: Any) -> None:
            guard.check(sock.family, address)
            return connect(sock, address)

        def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
            guard.check(sock.family, address)
            return connect_ex(sock, address)

        def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            text = host.decode() if isinstance(host, bytes) else str(host or "")
            if not _is_literal_or_local(text):  # only names go to a DNS server
                guard._refuse(f"name lookup of {text!r}")
            return getaddrinfo(host, *args, **kwargs)

        socket.socket.connect = guarded_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = guarded_getaddrinfo
        return self

    def __exit__(self, *exc: object) -> None:
        socket.socket.connect = self._saved["connect"]  # type: ignore[method-assign]
        socket.socket.connect_ex = self._saved["connect_ex"]  # type: ignore[method-assign]
        socket.getaddrinfo = self._saved["getaddrinfo"]

    def check(self, family: int, address: Any) -> None:
        if family not in (socket.AF_INET, socket.AF_INET6):
            return  # Unix sockets and the like stay on this machine
        if not _is_loopback(str(address[0])):
            self._refuse(f"connect to {address[0]!r} port {address[1]}")

    def _refuse(self, what: str) -> None:
        self.attempts.append(what)
        raise NonLoopbackConnection(f"tests may only reach loopback: {what}")


class StubResolver:
    """``socket.getaddrinfo`` answering test host names from a table; no lookup leaves.

        with StubResolver({"data.test": ["10.0.0.1", "::1"]}) as dns: ...

    A name maps to a list of addresses (the answer to every lookup) or to a list of such lists
    (one per lookup, the last one repeated: DNS rebinding). IP literals and "localhost" are
    answered by the real function (no DNS traffic); other names fail as unknown.
    ``lookups`` counts the lookups per name.
    """

    def __init__(self, table: dict[str, list[str] | list[list[str]]]) -> None:
        self.table = table
        self.lookups: dict[str, int] = {}
        self._saved: Any = None

    def __enter__(self) -> StubResolver:
        self._saved = socket.getaddrinfo
        socket.getaddrinfo = self.getaddrinfo
        return self

    def __exit__(self, *exc: object) -> None:
        socket.getaddrinfo = self._saved

    def getaddrinfo(self, host: Any, port: Any, family: int = 0, type: int = 0,
                    proto: int = 0, flags: int = 0) -> list[tuple[Any, ...]]:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in self.table:
            if name is None or _is_loopback(str(name)):
                return self._saved(host, port, family, type, proto, flags)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        count = self.lookups[name] = self.lookups.get(name, 0) + 1
        answers = self.table[name]
        if answers and isinstance(answers[0], list):
            answers = answers[min(count, len(answers)) - 1]
        number = int(port or 0)
        results = []
        for text in answers:
            address = ip_address(text)
            if address.version == 6:
                results.append((socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                                (str(address), number, 0, 0)))
            else:
                results.append((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                                (str(address), number)))
        return [r for r in results if family in (0, r[0])]
