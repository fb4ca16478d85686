"""The test helpers shipped with the app: the loopback guard and the resolver stub."""

from __future__ import annotations

import socket

import pytest

from koop_app.testing import LoopbackGuard, NonLoopbackConnection, StubResolver


def test_the_guard_refuses_before_any_packet_leaves():
    with LoopbackGuard() as guard:
        with socket.socket() as sock, pytest.raises(NonLoopbackConnection):
            sock.connect(("10.0.0.1", 80))
        with socket.socket(socket.AF_INET6) as sock, pytest.raises(NonLoopbackConnection):
            sock.connect_ex(("::ffff:10.0.0.1", 80, 0, 0))
        with pytest.raises(NonLoopbackConnection):
            socket.create_connection(("example.com", 80))  # the DNS lookup is refused
        assert socket.getaddrinfo("127.0.0.1", 80)  # literals resolve locally: no DNS
        assert socket.getaddrinfo("0.0.0.0", 80, flags=socket.AI_PASSIVE)
    assert len(guard.attempts) == 3


def test_the_guard_lets_loopback_through(source_server, loopback_only):
    source_server.route("/guard-ok", body=b"ok")
    with socket.create_connection(("127.0.0.1", source_server.port), timeout=2):
        pass
    assert not loopback_only.attempts


def test_stub_resolver_answers_from_its_table_and_counts():
    with StubResolver({"a.test": [["127.0.0.1"], ["10.0.0.1", "::1"]]}) as dns:
        first = socket.getaddrinfo("a.test", 80)
        second = socket.getaddrinfo("a.test", "80", socket.AF_INET6)
        third = socket.getaddrinfo("a.test", 80)
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("unknown.test", 80)
    assert [r[4] for r in first] == [("127.0.0.1", 80)]
    assert [r[4] for r in second] == [("::1", 80, 0, 0)]
    assert [r[4][0] for r in third] == ["10.0.0.1", "::1"]  # the last answer repeats
    assert dns.lookups == {"a.test": 3}
