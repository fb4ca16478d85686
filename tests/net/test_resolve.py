"""Resolution: every answer checked, mapped forms merged, a slow resolver bounded in time."""

from __future__ import annotations

import socket
import threading
import time
from ipaddress import ip_address

import pytest

from koop_app.errors import SourceConnectError, SourceRefusedError
from koop_app.net.resolve import checked_addresses
from koop_app.net.urls import parse_url


def test_answers_are_checked_and_merged(allow, dns):
    allow("127.0.0.1/32")
    dns({"twice.test": ["::ffff:127.0.0.1", "127.0.0.1"], "bad.test": ["127.0.0.1", "::1"]})
    assert checked_addresses(parse_url("http://twice.test/"), 1.0) == [ip_address("127.0.0.1")]
    with pytest.raises(SourceRefusedError) as error:
        checked_addresses(parse_url("http://bad.test/"), 1.0)
    assert "::1 (loopback)" in error.value.log_message


def test_literals_are_not_looked_up(strict, dns):
    resolver = dns({})
    with pytest.raises(SourceRefusedError):
        checked_addresses(parse_url("http://0x7f000001/"), 1.0)
    assert resolver.lookups == {}


def test_a_slow_resolver_is_not_waited_for(monkeypatch):
    release = threading.Event()

    def slow(*args, **kwargs):
        release.wait(5)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    started = time.monotonic()
    with pytest.raises(SourceConnectError) as error:
        checked_addresses(parse_url("http://slow.test/"), 0.2)
    release.set()
    assert time.monotonic() - started < 1.0
    assert "no DNS answer" in error.value.log_message
