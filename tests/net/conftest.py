"""Fixtures for the fetch-policy tests: settings, a connect recorder, a DNS stub, TLS files."""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from koop_app.testing import SourceServer, StubResolver


@pytest.fixture
def allow(settings) -> Callable[..., None]:
    """``allow("127.0.0.1/32")`` sets KOOP['ALLOWED_SOURCE_NETWORKS'] for the test."""

    def set_networks(*networks: str) -> None:
        settings.KOOP = {**settings.KOOP, "ALLOWED_SOURCE_NETWORKS": list(networks)}

    return set_networks


@pytest.fixture
def strict(allow) -> None:
    """The production default: no network allowed beyond public addresses."""
    allow()


@pytest.fixture
def connects(monkeypatch, loopback_only) -> list[tuple[str, int]]:
    """Every (host, port) a socket tried to connect to during the test, loopback included."""
    seen: list[tuple[str, int]] = []
    guarded = socket.socket.connect

    def recording(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            seen.append((address[0], address[1]))
        return guarded(sock, address)

    monkeypatch.setattr(socket.socket, "connect", recording)
    return seen


@pytest.fixture
def dns() -> Iterator[Callable[[dict[str, Any]], StubResolver]]:
    """``dns({"data.test": ["10.0.0.1"]})``: a resolver stub for the rest of the test."""
    stubs: list[StubResolver] = []

    def install(table: dict[str, Any]) -> StubResolver:
        stub = StubResolver(table).__enter__()
        stubs.append(stub)
        return stub

    yield install
    for stub in reversed(stubs):
        stub.__exit__()


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> dict[str, Path]:
    """A test CA and a server certificate for source.test, made with the openssl command."""
    folder = tmp_path_factory.mktemp("tls")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Test CA",
            "-keyout", "ca.key", "-out", "ca.pem",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=source.test",
            "-keyout", "server.key", "-out", "server.csr")
    (folder / "ext.cnf").write_text("subjectAltName=DNS:source.test\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem")
    return {name: folder / f"{name}" for name in ("ca.pem", "server.pem", "server.key")}


@pytest.fixture(scope="session")
def tls_server(certs) -> Iterator[SourceServer]:
    """An https SourceServer on 127.0.0.1 for source.test; ``server_names`` records SNI."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs["server.pem"], certs["server.key"])
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    with SourceServer(ssl_context=context) as server:
        server.server_names = names  # type: ignore[attr-defined]
        yield server
