"""Helpers for tests: a scripted HTTP source on 127.0.0.1 run in a thread, a throwaway Redis,
and ``GuardedProvider``, a provider with its own token security (Koop's authorization plugins).

    with SourceServer() as server:
        server.route("/data.geojson", body=b'{"type": "FeatureCollection", "features": []}')
        server.route("/slow", body=b"{}", delay=5)
        server.route("/fail", status=500)
        read_source(server.url("/data.geojson"))
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from django.http import HttpRequest, JsonResponse

from koop_app.errors import ProviderError
from koop_app.provider import Controller, Provider, ProviderRequest, Route


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
    """A threaded HTTP server whose paths answer as scripted; counts requests per path."""

    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                script = server.scripts.get(path)
                if script is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if script.delay:
                    time.sleep(script.delay)
                self._answer(script)

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
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def route(self, path: str, **script: object) -> str:
        self.scripts[path] = Script(**script)  # type: ignore[arg-type]
        return self.url(path)

    def url(self, path: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{path}"

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
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
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
