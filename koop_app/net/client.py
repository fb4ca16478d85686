"""The one HTTP client for outbound fetches: the fetch policy, limits and redirects.

    from koop_app.net import get, request
    answer = get("https://example.org/wells.csv", headers={"Authorization": "Bearer x"})
    answer.body, answer.status, answer.headers["content-type"], answer.url
    # An API: any method, a body, and the statuses the caller reads itself (else errors).
    answer = request("POST", "https://search.example.org/idx/_search", body=b'{...}',
                     headers={"Content-Type": "application/json"}, accept={400, 404})

For each URL, including each redirect target: the URL is parsed (``net.urls``), the host
resolved once and every address checked (``net.resolve``); the connection goes to a checked
address while the Host header, TLS SNI and certificate check use the URL's host name. Redirects
(at most ``KOOP['MAX_REDIRECTS']``) are followed here, https -> http is refused, and the
caller's headers are dropped when a redirect leaves the first URL's origin. Bodies are limited
to ``KOOP['MAX_DOWNLOAD_BYTES']`` on the wire and after gzip/deflate decoding, and the whole
fetch to ``KOOP['MAX_FETCH_SECONDS']`` of wall clock (a watchdog shuts the socket down).

A POST (any method with a body) follows only 307/308 redirects, which keep the method and body;
the other redirect codes answer a GET and are returned to the caller as they are.

Statuses the caller did not ``accept`` are errors: 404 ``SourceNotFoundError``, 401/403
``SourceAuthError`` (the source refused the credentials we sent, or wants some), 429
``SourceRateLimitedError`` (with the Retry-After the source sent), others ``SourceError``.

Failures are KoopErrors. Everything that ends without an HTTP status line (no DNS answer,
refused, reset, timed out, TLS failure, garbage) is one ``SourceConnectError`` whose message
reads "Could not connect": the difference stays in ``log_message`` so that registering sources
cannot map ports.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import BinaryIO
from urllib.parse import urljoin

import certifi

from koop_app.conf import koop_settings
from koop_app.data import progress
from koop_app.errors import (
    SourceAuthError,
    SourceConnectError,
    SourceError,
    SourceFormatError,
    SourceNotFoundError,
    SourceRateLimitedError,
    SourceRefusedError,
    SourceTimeoutError,
    SourceTooLargeError,
)
from koop_app.net.addresses import IPAddress
from koop_app.net.decode import CHUNK, DecodeError, content_decoder
from koop_app.net.resolve import checked_addresses
from koop_app.net.urls import SourceURL, URLError, parse_url

REDIRECTS = {301, 302, 303, 307, 308}
USER_AGENT = "koop-app"
# Framing and encoding are ours to choose: a caller's value could break the limits.
RESERVED_HEADERS = {"host", "connection", "content-length", "transfer-encoding",
                    "accept-encoding", "te", "upgrade"}


@dataclass(frozen=True)
class Response:
    """An answer (2xx, or a status the caller accepted): the final URL after redirects, status,
    headers (lowercase names), body."""

    url: str
    status: int
    headers: dict[str, str] = field(repr=False)
    body: bytes = field(repr=False)


def get(url: str, *, headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None) -> Response:
    """GET ``url`` under the fetch policy; a 2xx Response or a KoopError (see the module doc)."""
    return request("GET", url, headers=headers, max_bytes=max_bytes)


def request(method: str, url: str, *, headers: Mapping[str, str] | None = None,
            body: bytes | None = None, max_bytes: int | None = None,
            accept: Collection[int] = (), sink: BinaryIO | None = None) -> Response:
    """``method`` ``url`` (with ``body``) under the fetch policy.

    A 2xx Response, or one whose status is in ``accept`` (e.g. 304 for a conditional request,
    400 to read a search engine's error), else a KoopError (see the module doc). With ``sink``
    the body is written there as it arrives (``get_to_file``).
    """
    method = method.upper()
    if not method.isascii() or not method.isalpha():
        raise ValueError(f"invalid method {method!r}")
    limit = int(koop_settings.MAX_DOWNLOAD_BYTES if max_bytes is None else max_bytes)
    return _Fetch(url, dict(headers or {}), limit, sink, method=method, body=body,
                  accept=frozenset(accept)).run()


def get_to_file(url: str, sink: BinaryIO, *, headers: Mapping[str, str] | None = None,
                max_bytes: int | None = None) -> Response:
    """``get``, with the (decoded) body written to ``sink`` as it arrives, not kept in memory.

    The same checks and limits; the Response's ``body`` is empty. On failure ``sink`` may
    hold part of the body: the caller discards it.
    """
    return request("GET", url, headers=headers, max_bytes=max_bytes, sink=sink)


class _Clock:
    """The wall-clock budget of one fetch."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def cap(self, timeout: float) -> float:
        """``timeout`` shortened to what is left (never zero: that would mean non-blocking)."""
        return max(0.001, min(timeout, self.remaining()))


class _Watchdog:
    """Shuts the fetch's current socket down when its budget is spent.

    Socket timeouts bound each read, not the sum: a server sending a byte a second would keep
    a read going forever. Shutting the socket down wakes the blocked read at the deadline.
    """

    def __init__(self, clock: _Clock) -> None:
        self.fired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, clock.remaining()), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            if self.fired:
                self._shutdown()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self._sock is not None:
            try:
                # The plain socket's shutdown, also for TLS: SSLSocket.shutdown would drop its
                # SSL object under a thread that is still reading through it.
                socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
            except OSError:
                pass  # already closed


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to checked addresses only; ``host`` (the name) is used for the Host header alone."""

    def __init__(self, url: SourceURL, addresses: list[IPAddress], clock: _Clock,
                 watchdog: _Watchdog) -> None:
        super().__init__(url.host, url.port)
        self.addresses = addresses
        self.clock = clock
        self.watchdog = watchdog
        self.address: IPAddress | None = None
        self.failures: list[str] = []

    def connect(self) -> None:
        self.sock = self._open()

    def _open(self) -> socket.socket:
        """A TCP connection to the first checked address that accepts; no name lookup here."""
        for address in self.addresses:
            family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            self.watchdog.watch(sock)
            sock.settimeout(self.clock.cap(float(koop_settings.CONNECT_TIMEOUT)))
            try:
                sock.connect((str(address), self.port))
            except OSError as exc:
                sock.close()
                self.failures.append(f"{address}: {type(exc).__name__}: {exc}")
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self.clock.cap(float(koop_settings.READ_TIMEOUT)))
            self.address = address
            return sock
        raise ConnectionError("; ".join(self.failures) or "no address")


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """HTTPS to checked addresses; SNI and the certificate check use the URL's host name."""

    # http.client writes "Host: name:port" unless the port is the scheme's default; signed
    # requests (S3's SigV4 signs the Host header) must see the plain name on 443.
    default_port = 443

    def connect(self) -> None:
        raw = self._open()
        try:
            tls = _tls_context(koop_settings.SOURCE_CA_BUNDLE).wrap_socket(
                raw, server_hostname=self.host, do_handshake_on_connect=False)
        except BaseException:
            raw.close()
            raise
        self.watchdog.watch(tls)
        self.sock = tls
        tls.do_handshake()


@lru_cache(maxsize=4)
def _tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Certificate and host name checks on (the defaults), trusting certifi's CAs by default."""
    return ssl.create_default_context(cafile=ca_bundle or certifi.where())


class _Fetch:
    """One fetch: the hops of a redirect chain under one clock, one watchdog and one limit."""

    def __init__(self, url: str, headers: dict[str, str], limit: int,
                 sink: BinaryIO | None = None, *, method: str = "GET", body: bytes | None = None,
                 accept: frozenset[int] = frozenset()) -> None:
        for name, value in headers.items():
            if not _header_ok(name, value):
                raise ValueError(f"invalid request header {name!r}")
        self.url = url
        self.headers = {k: v for k, v in headers.items() if k.lower() not in RESERVED_HEADERS}
        self.limit = limit
        self.sink = sink
        self.method, self.body, self.accept = method, body, accept
        self.clock = _Clock(float(koop_settings.MAX_FETCH_SECONDS))

    def run(self) -> Response:
        first = previous = self._parse(self.url)
        current = self.url
        with _Watchdog(self.clock) as watchdog:
            for _ in range(int(koop_settings.MAX_REDIRECTS) + 1):
                target = self._parse(current)
                if previous.scheme == "https" and target.scheme == "http":
                    raise SourceRefusedError(
                        log_message=f"{self.method} {self.url}: redirect from https to plain "
                                    f"http {current}")
                if target.origin != first.origin:
                    self.headers = {}  # credentials meant for the first origin stay there
                answer = self._hop(current, target, watchdog)
                if isinstance(answer, Response):
                    return answer
                previous, current = target, answer
        raise SourceRefusedError(log_message=f"{self.method} {self.url}: more than "
                                 f"{koop_settings.MAX_REDIRECTS} redirects")

    def _parse(self, url: str) -> SourceURL:
        try:
            return parse_url(url)
        except URLError as exc:
            raise SourceRefusedError(log_message=f"{self.method} {url}: {exc}") from None

    def _hop(self, url: str, target: SourceURL, watchdog: _Watchdog) -> Response | str:
        """The Response, or the next URL when the answer is a redirect."""
        addresses = checked_addresses(target, self.clock.cap(float(koop_settings.CONNECT_TIMEOUT)))
        kind = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
        conn = kind(target, addresses, self.clock, watchdog)
        response: http.client.HTTPResponse | None = None
        try:
            response = self._send(url, target, conn, watchdog)
            status = response.status
            if self._follows(status) and response.getheader("Location"):
                return urljoin(url, _location(response)).split("#", 1)[0]
            if not 200 <= status < 300 and status not in self.accept:
                raise _status_error(self.method, url, status, response)
            body = self._read(url, response, watchdog)
            return Response(url, status, {k.lower(): v for k, v in response.getheaders()}, body)
        finally:
            if response is not None:
                response.close()  # with "Connection: close" the response owns the socket
            conn.close()

    def _follows(self, status: int) -> bool:
        """Whether a redirect is followed: a request with a body keeps it only on 307/308."""
        if status in self.accept or status not in REDIRECTS:
            return False
        return self.body is None or status in (307, 308)

    def _send(self, url: str, target: SourceURL, conn: _PinnedHTTPConnection,
              watchdog: _Watchdog) -> http.client.HTTPResponse:
        """Connect, send the request and read the status line and headers."""
        headers = {"User-Agent": USER_AGENT, "Accept": "*/*", **self.headers,
                   "Accept-Encoding": "gzip, deflate", "Connection": "close"}
        try:
            conn.request(self.method, target.target, body=self.body, headers=headers)
            response = conn.getresponse()
            if watchdog.fired:  # the shut-down socket ended the head early: not an answer
                response.close()
                raise TimeoutError("the answer's head was not received in time")
            return response
        except (OSError, http.client.HTTPException) as exc:
            where = f" ({conn.address})" if conn.address else ""
            late = "; fetch time limit reached" if watchdog.fired else ""
            raise SourceConnectError(
                log_message=f"{self.method} {url}{where}: {type(exc).__name__}: {exc}{late}"
            ) from None

    def _read(self, url: str, response: http.client.HTTPResponse, watchdog: _Watchdog) -> bytes:
        declared = response.getheader("Content-Length", "")
        if declared.isdigit() and int(declared) > self.limit:
            raise SourceTooLargeError(log_message=f"{self.method} {url}: Content-Length {declared}")
        try:
            decoder = content_decoder(response.getheader("Content-Encoding"))
        except DecodeError as exc:
            raise SourceFormatError(log_message=f"{self.method} {url}: {exc}") from None
        body, wire, size = bytearray(), 0, 0
        try:
            total = int(declared) if declared.isdigit() else None
            while piece := response.read1(CHUNK):
                wire += len(piece)
                progress.read(wire, total)  # a refresh's progress (koop_app/data/progress.py)
                if wire > self.limit:
                    raise SourceTooLargeError(
                        log_message=f"{self.method} {url}: over {self.limit} bytes")
                for decoded in decoder.feed(piece):
                    size += len(decoded)
                    if size > self.limit:
                        raise SourceTooLargeError(
                            log_message=f"{self.method} {url}: over {self.limit} bytes once "
                                        "decoded")
                    if self.sink is not None:
                        self.sink.write(decoded)
                    else:
                        body += decoded
            if watchdog.fired:
                raise TimeoutError("fetch time limit reached")
            if response.length:  # Content-Length promised more than came
                raise http.client.IncompleteRead(b"", response.length)
            decoder.finish()
        except DecodeError as exc:
            raise SourceFormatError(log_message=f"{self.method} {url}: {exc}") from None
        except TimeoutError as exc:
            raise SourceTimeoutError(log_message=f"{self.method} {url}: body not received in time: "
                                     f"{exc}") from None
        except (OSError, http.client.HTTPException) as exc:
            if watchdog.fired:
                raise SourceTimeoutError(log_message=f"{self.method} {url}: body not received in "
                                         f"time: {exc}") from None
            raise SourceError("The data source broke off its answer.",
                              log_message=f"{self.method} {url}: {type(exc).__name__}: {exc}"
                              ) from None
        return bytes(body)


def _status_error(method: str, url: str, status: int, response: http.client.HTTPResponse
                  ) -> SourceError | SourceNotFoundError:
    """The error for a status the caller did not accept (the URL only in the log)."""
    where = f"{method} {url}: HTTP {status}"
    if status == 404:
        return SourceNotFoundError(log_message=where)
    if status in (401, 403):
        return SourceAuthError(log_message=where)
    if status == 429:
        wait = (response.getheader("Retry-After") or "").strip()
        after = f" Retry after {wait} seconds." if wait.isdigit() else ""
        return SourceRateLimitedError(f"The data source is limiting our requests (HTTP 429)."
                                      f"{after}", log_message=where)
    return SourceError(f"The data source answered HTTP {status}.", log_message=where)


def _location(response: http.client.HTTPResponse) -> str:
    """The Location header; http.client reads headers as Latin-1, servers send UTF-8."""
    value = response.getheader("Location", "")
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def _header_ok(name: str, value: str) -> bool:
    text = f"{name}{value}"
    return bool(name) and ":" not in name and not any(c in text for c in "\r\n\0")
