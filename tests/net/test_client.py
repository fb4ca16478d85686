"""The SSRF matrix and the client's limits, against real servers on 127.0.0.1 only.

Every refusal is proven to happen before a connection: ``connects`` records each connect()
(loopback included) and the suite-wide LoopbackGuard fails a test that tries any other address
or a real DNS lookup. Host names come from a resolver stub (``dns``).
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

from koop_app.errors import (
    SourceConnectError,
    SourceError,
    SourceRefusedError,
    SourceTimeoutError,
    SourceTooLargeError,
)
from koop_app.net import get
from koop_app.sources import read_source

SECRET = b"name,password\nadmin,hunter2\n"
REFUSED = "The data source address is refused by policy."
COULD_NOT_CONNECT = "Could not connect to the data source."


@pytest.fixture
def secret(source_server):
    """A loopback-only service holding a secret that no refused URL may ever read."""
    source_server.route("/secret.csv", body=SECRET, content_type="text/csv")
    return source_server


def assert_refused(url: str, server, connects: list, first_hop: list | None = None) -> None:
    before = server.hits.get("/secret.csv", 0)
    with pytest.raises(SourceRefusedError) as error:
        read_source(url)
    assert (error.value.status, error.value.message) == (403, REFUSED)
    assert error.value.admin_message == REFUSED
    assert connects == (first_hop or [])
    assert server.hits.get("/secret.csv", 0) == before


# -- literal addresses and host spellings -------------------------------------------------

LOOPBACK = [
    "http://127.0.0.1:{port}/secret.csv", "http://127.1:{port}/secret.csv",
    "http://127.0.0.2:{port}/secret.csv", "http://2130706433:{port}/secret.csv",
    "http://0x7f000001:{port}/secret.csv", "http://0x7f.1:{port}/secret.csv",
    "http://0177.0.0.1:{port}/secret.csv", "http://017700000001:{port}/secret.csv",
    "http://127.0.0.1.:{port}/secret.csv", "HTTP://127.0.0.1:{port}/secret.csv",
    "http://１２７.０.０.１:{port}/secret.csv", "http://0.0.0.0:{port}/secret.csv",
    "http://0:{port}/secret.csv", "http://[::1]:{port}/secret.csv",
    "http://[::]:{port}/secret.csv", "http://[::ffff:127.0.0.1]:{port}/secret.csv",
    "http://[0:0:0:0:0:ffff:7f00:1]:{port}/secret.csv", "http://[::127.0.0.1]:{port}/secret.csv",
    "http://localhost:{port}/secret.csv", "http://LOCALHOST.:{port}/secret.csv",
    "http://evil@127.0.0.1:{port}/secret.csv", "http://127.0.0.1:{port}\\@evil.test/",
    "https://127.0.0.1:{port}/secret.csv",
]


@pytest.mark.parametrize("template", LOOPBACK)
def test_loopback_in_every_spelling_is_refused(strict, secret, connects, template):
    assert_refused(template.format(port=secret.port), secret, connects)


OFF_LOOPBACK = [
    "10.0.0.1", "10.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0xa9fea9fe",
    "2852039166", "100.64.0.1", "224.0.0.1", "239.255.255.250", "255.255.255.255",
    "240.0.0.1", "192.0.0.1", "192.0.2.1", "198.18.0.1", "198.51.100.1", "203.0.113.1",
    "[fc00::1]", "[fd00:ec2::254]", "[fe80::1]", "[ff02::1]", "[fec0::1]", "[100::1]",
    "[::ffff:10.0.0.1]", "[::ffff:169.254.169.254]", "[::ffff:a9fe:a9fe]", "[::10.0.0.1]",
    "[64:ff9b::169.254.169.254]", "[2002:a9fe:a9fe::1]", "[2001:0:4136:e378:8000:63bf:f5ff:fffe]",
    "[2001:db8::1]",
]


@pytest.mark.parametrize("host", OFF_LOOPBACK)
def test_private_and_special_addresses_are_refused(source_server, connects, host):
    # Allowed loopback (as in every test) changes nothing for these.
    assert_refused(f"http://{host}/latest/meta-data/", source_server, connects)


# -- host names: every answer checked -----------------------------------------------------

NAMES = {
    "internal.test": ["10.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "mapped.test": ["::ffff:10.0.0.1"],
    "nat64.test": ["64:ff9b::a9fe:a9fe"],
    "mixed.test": ["93.184.216.34", "10.0.0.1"],  # a public-looking answer first
    "mixed6.test": ["2606:4700::1111", "fd00::1"],
    "loop.test": ["127.0.0.1"],
}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_names_resolving_to_refused_addresses_are_refused(strict, secret, connects, dns, name):
    resolver = dns(NAMES)
    assert_refused(f"http://{name}:{secret.port}/secret.csv", secret, connects)
    assert resolver.lookups == {name: 1}


def test_an_unknown_name_could_not_connect(strict, connects, dns):
    dns({})
    with pytest.raises(SourceConnectError) as error:
        read_source("http://nowhere.test/data.csv")
    assert error.value.message == COULD_NOT_CONNECT and connects == []


# -- redirects: each hop checked ----------------------------------------------------------

REDIRECT_TARGETS = [
    "http://127.0.0.2:{port}/secret.csv", "http://0.0.0.0:{port}/secret.csv",
    "http://[::ffff:127.0.0.2]:{port}/secret.csv", "http://0x7f000002:{port}/secret.csv",
    "http://[::1]:{port}/secret.csv", "http://10.0.0.1/", "//10.0.0.1/x",
    "http://169.254.169.254/latest/meta-data/", "http://[::ffff:169.254.169.254]/",
    "http://0xa9fea9fe/", "http://internal.test:{port}/secret.csv",
    "http://mixed.test/", "file:///etc/passwd", "gopher://127.0.0.1:{port}/_",
    "ftp://127.0.0.1:{port}/", "http://evil@127.0.0.1:{port}/secret.csv",
]


@pytest.mark.parametrize("template", REDIRECT_TARGETS)
def test_redirects_to_refused_targets_are_refused(allow, secret, connects, dns, template):
    allow("127.0.0.1/32")  # the first hop is allowed; the target is not
    dns(NAMES)
    location = template.format(port=secret.port)
    url = secret.route(f"/jump-{abs(hash(template))}", status=302, headers={"Location": location})
    assert_refused(url, secret, connects, first_hop=[("127.0.0.1", secret.port)])


def test_redirect_chain_is_limited(settings, source_server):
    settings.KOOP = {**settings.KOOP, "MAX_REDIRECTS": 3}
    source_server.route("/hop-end", body=b"end")
    for number in range(4):
        target = source_server.url(f"/hop-{number + 1}" if number < 3 else "/hop-end")
        source_server.route(f"/hop-{number}", status=307, headers={"Location": target})
    assert read_source(source_server.url("/hop-1")) == b"end"  # 3 redirects
    with pytest.raises(SourceRefusedError):
        read_source(source_server.url("/hop-0"))  # 4 redirects
    source_server.route("/loop", status=302, headers={"Location": "/loop"})
    with pytest.raises(SourceRefusedError):
        read_source(source_server.url("/loop"))


def test_headers_do_not_follow_a_redirect_to_another_origin(source_server, dns):
    dns({"other.test": ["127.0.0.1"]})
    source_server.route("/auth-end", body=b"ok")
    source_server.route("/auth-same", status=302, headers={"Location": "/auth-end"})
    source_server.route("/auth-away", status=302,
                        headers={"Location": source_server.url("/auth-end", host="other.test")})
    secret_headers = {"Authorization": "Bearer s3cret", "X-Api-Key": "k"}
    get(source_server.url("/auth-same"), headers=secret_headers)
    assert source_server.requests[-1]["authorization"] == "Bearer s3cret"
    get(source_server.url("/auth-away"), headers=secret_headers)
    last = source_server.requests[-1]
    assert last["host"] == f"other.test:{source_server.port}"
    assert "authorization" not in last and "x-api-key" not in last


# -- DNS rebinding: the checked address is the one connected to ---------------------------

def test_one_lookup_per_hop_and_the_connection_goes_to_the_checked_address(
        allow, source_server, connects, dns):
    allow("127.0.0.1/32")
    resolver = dns({"rebind.test": [["127.0.0.1"], ["10.0.0.1"]]})  # second answer: private
    source_server.route("/rebind", body=b"data")
    answer = get(source_server.url("/rebind", host="rebind.test"))
    assert answer.body == b"data"
    assert resolver.lookups == {"rebind.test": 1}
    assert connects == [("127.0.0.1", source_server.port)]
    assert source_server.requests[-1]["host"] == f"rebind.test:{source_server.port}"


def test_a_second_lookup_on_a_redirect_is_checked_too(allow, source_server, connects, dns):
    allow("127.0.0.1/32")
    resolver = dns({"rebind2.test": [["127.0.0.1"], ["10.0.0.1"]]})
    source_server.route("/rebind-hop", status=302,
                        headers={"Location": source_server.url("/rebind", host="rebind2.test")})
    with pytest.raises(SourceRefusedError):
        get(source_server.url("/rebind-hop", host="rebind2.test"))
    assert resolver.lookups == {"rebind2.test": 2}
    assert connects == [("127.0.0.1", source_server.port)]


def test_next_checked_address_is_tried_when_one_refuses(allow, source_server, connects, dns):
    allow("127.0.0.1/32", "::1/128")
    dns({"multi.test": ["::1", "127.0.0.1"]})  # the server listens on 127.0.0.1 only
    source_server.route("/multi", body=b"both")
    assert get(source_server.url("/multi", host="multi.test")).body == b"both"
    assert connects == [("::1", source_server.port), ("127.0.0.1", source_server.port)]


# -- https: SNI and certificate checked against the URL's host name -----------------------

@pytest.fixture
def trust(settings, certs):
    settings.KOOP = {**settings.KOOP, "SOURCE_CA_BUNDLE": str(certs["ca.pem"])}


def test_https_to_a_checked_address_with_the_name_for_sni_and_certificate(
        trust, tls_server, connects, dns):
    dns({"source.test": ["127.0.0.1"]})
    tls_server.route("/tls.json", body=b"{}")
    answer = get(tls_server.url("/tls.json", host="source.test"))
    assert (answer.status, answer.body) == (200, b"{}")
    assert tls_server.server_names[-1] == "source.test"
    assert tls_server.requests[-1]["host"] == f"source.test:{tls_server.port}"
    assert connects == [("127.0.0.1", tls_server.port)]


def test_https_downgrade_on_redirect_is_refused(trust, tls_server, secret, connects, dns):
    dns({"source.test": ["127.0.0.1"]})
    url = tls_server.route("/down", status=302,
                           headers={"Location": secret.url("/secret.csv")})
    assert_refused(url.replace("127.0.0.1", "source.test"), secret, connects,
                   first_hop=[("127.0.0.1", tls_server.port)])


# -- a port scanner learns nothing: every failure before an answer reads the same ----------

class RawServer:
    """A TCP server on 127.0.0.1 that does ``handle(connection)`` for each client."""

    def __init__(self, handle: Callable[[socket.socket], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.handle = handle
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        try:
            self.handle(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.listener.close()


def _reset(conn: socket.socket) -> None:
    conn.recv(1024)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


def _silent(conn: socket.socket) -> None:
    conn.recv(1024)
    time.sleep(4)


def _banner(conn: socket.socket) -> None:
    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
    time.sleep(0.5)


def _dripping_head(conn: socket.socket) -> None:
    conn.recv(1024)
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    for _ in range(40):
        conn.sendall(b"a")
        time.sleep(0.2)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def failing_url(request, trust, tls_server, source_server, dns) -> Iterator[str]:
    """A URL that fails in the way named by the parameter."""
    dns({"wrong.test": ["127.0.0.1"]})
    kind = request.param
    handlers = {"reset": _reset, "silent": _silent, "banner": _banner, "drip": _dripping_head}
    if kind in handlers:
        server = RawServer(handlers[kind])
        yield f"http://127.0.0.1:{server.port}/data.csv"
        server.close()
    elif kind == "refused":
        yield f"http://127.0.0.1:{_closed_port()}/data.csv"
    elif kind == "tls-wrong-name":
        yield tls_server.url("/tls.json", host="wrong.test")
    elif kind == "tls-to-plain":
        yield source_server.url("/good.json").replace("http:", "https:")
    else:
        yield "http://unknown-name.test/data.csv"


FAILURES = ["refused", "reset", "silent", "banner", "drip", "tls-wrong-name", "tls-to-plain",
            "dns"]


@pytest.mark.parametrize("failing_url", FAILURES, indirect=True)
def test_connection_failures_all_read_could_not_connect(failing_url, make_dataset):
    started = time.monotonic()
    with pytest.raises(SourceConnectError) as error:
        read_source(failing_url)
    assert time.monotonic() - started < 3.5  # MAX_FETCH_SECONDS is 2.5 in tests
    assert (error.value.status, error.value.message) == (502, COULD_NOT_CONNECT)
    assert error.value.admin_message == COULD_NOT_CONNECT
    assert error.value.log_message != COULD_NOT_CONNECT  # the detail stays in the log


@pytest.mark.parametrize("failing_url", ["refused", "reset", "tls-wrong-name"], indirect=True)
def test_the_admin_sees_the_same_last_error(failing_url, make_dataset):
    from koop_app import data

    dataset = make_dataset("geojson", "probe", None, options={"source": failing_url})
    with pytest.raises(SourceConnectError):
        data.refresh(dataset)
    dataset.refresh_from_db()
    assert dataset.last_error == f"SourceConnectError: {COULD_NOT_CONNECT}"


# -- limits: bytes after decoding, wall clock, truncation ---------------------------------

@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip.compress(b"\0" * 100_000_000, compresslevel=6)  # 100 MB in about 100 KB


def test_a_gzip_bomb_stops_at_the_byte_limit(source_server, bomb):
    url = source_server.route("/bomb.json", body=bomb, headers={"Content-Encoding": "gzip"})
    tracemalloc.start()
    try:
        with pytest.raises(SourceTooLargeError) as error:
            read_source(url)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "decoded" in error.value.log_message
    assert peak < 8_000_000  # the limit is 1 MB; the 100 MB were never made


def test_gzip_and_deflate_bodies_are_decoded(source_server):
    url = source_server.route("/gz.json", body=gzip.compress(b'{"a": 1}'),
                              headers={"Content-Encoding": "gzip"})
    assert read_source(url) == b'{"a": 1}'
    assert source_server.requests[-1]["accept-encoding"] == "gzip, deflate"


def test_the_whole_fetch_has_a_wall_clock_limit():
    def drip_body(conn: socket.socket) -> None:
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(1000):  # each byte well within the read timeout (1.5 s)
            conn.sendall(b"x")
            time.sleep(0.2)

    server = RawServer(drip_body)
    started = time.monotonic()
    try:
        with pytest.raises(SourceTimeoutError) as error:
            read_source(f"http://127.0.0.1:{server.port}/drip")
    finally:
        server.close()
    assert 2.3 < time.monotonic() - started < 3.5  # MAX_FETCH_SECONDS = 2.5
    assert error.value.status == 504


def test_a_cut_off_body_is_an_error():
    def short(conn: socket.socket) -> None:
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")

    server = RawServer(short)
    try:
        with pytest.raises(SourceError) as error:
            read_source(f"http://127.0.0.1:{server.port}/short")
    finally:
        server.close()
    assert error.value.message == "The data source broke off its answer."


def test_get_returns_status_headers_and_final_url(source_server):
    source_server.route("/final.json", body=b"[]", headers={"ETag": '"v1"'})
    source_server.route("/start.json", status=301, headers={"Location": "/final.json"})
    answer = get(source_server.url("/start.json"))
    assert answer.url == source_server.url("/final.json")
    assert answer.headers["etag"] == '"v1"' and answer.body == b"[]"
    assert source_server.requests[-1]["user-agent"].startswith("koop-app")


def test_a_utf8_location_is_followed(source_server):
    source_server.route("/caf%C3%A9.json", body=b"[1]")
    source_server.route("/to-cafe", status=302, headers={"Location": "/café.json"})
    assert read_source(source_server.url("/to-cafe")) == b"[1]"


def test_the_host_header_leaves_out_the_default_https_port():
    """``Host: name`` on 443, as sent by every client (S3 signs the Host header)."""
    from koop_app.net.client import _Clock, _PinnedHTTPSConnection, _Watchdog
    from koop_app.net.urls import parse_url

    clock = _Clock(5)
    for url, host in [("https://data.test/x", b"Host: data.test"),
                      ("https://data.test:8443/x", b"Host: data.test:8443")]:
        conn = _PinnedHTTPSConnection(parse_url(url), [], clock, _Watchdog(clock))
        conn.putrequest("GET", "/x")  # buffered: nothing connects
        assert host + b"\r\n" in b"\r\n".join(conn._buffer) + b"\r\n"
