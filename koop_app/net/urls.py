"""Source URLs taken apart the one way the client will use them, odd spellings included.

    parse_url("http://0x7f000001:8080/a?b=1")
    # SourceURL(scheme="http", host="127.0.0.1", port=8080, target="/a?b=1", address=127.0.0.1)

A host whose last label is a number is an IPv4 address however it is spelled (2130706433,
0x7f000001, 0177.0.0.1, 127.1), as browsers (WHATWG URL) and ``inet_aton`` read it; it is
decoded here so that no name ever reaches the resolver looking like an address. Other hosts are
IDNA-encoded (which also folds full-width digits and dots), lowercased and stripped of one
trailing dot. Anything else odd (user info, percent signs, backslashes, spaces, zone ids) is
refused rather than interpreted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from urllib.parse import quote, urlsplit

IPAddress = IPv4Address | IPv6Address

SCHEMES = {"http": 80, "https": 443}
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMBER = re.compile(r"[0-9]+|0x[0-9a-f]*")
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


class URLError(ValueError):
    """The URL cannot be used as a source; the message says why (no secrets in it)."""


@dataclass(frozen=True)
class SourceURL:
    """A checked http(s) URL: where to connect, and what to send as Host and request target."""

    scheme: str
    host: str  # ASCII: a DNS name, or the canonical text of ``address``
    port: int
    target: str  # path and query, e.g. "/data.csv?x=1"
    address: IPAddress | None  # set when the host is an IP literal: nothing to resolve

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port


def parse_url(url: str) -> SourceURL:
    """``url`` as a SourceURL, or URLError."""
    if not isinstance(url, str) or _FORBIDDEN.search(url):
        raise URLError("the URL contains spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise URLError("the URL is malformed (host or port)") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise URLError("only http and https URLs are allowed")
    if "@" in parts.netloc:
        raise URLError("credentials in the URL are not supported")
    if port == 0:
        raise URLError("port 0 is not a valid port")
    raw_host = parts.hostname or ""
    host, address = parse_host(f"[{raw_host}]" if parts.netloc.startswith("[") else raw_host)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # Non-ASCII in a path or query is sent percent-encoded (UTF-8), as browsers do.
    target = _NON_ASCII.sub(lambda match: quote(match.group()), target)
    return SourceURL(scheme, host, port or SCHEMES[scheme], target, address)


def parse_host(raw: str) -> tuple[str, IPAddress | None]:
    """(ASCII host, address when it is an IP literal) for a URL's host part, or URLError."""
    if not raw:
        raise URLError("the URL has no host")
    if raw.startswith("["):
        if not raw.endswith("]"):
            raise URLError("the URL's IPv6 address is malformed")
        try:
            address = IPv6Address(raw[1:-1])
        except ValueError:
            raise URLError("the URL's IPv6 address is malformed") from None
        if address.scope_id:
            raise URLError("IPv6 zone ids are not supported")
        return str(address), address
    host = _ascii_host(raw)
    labels = host.split(".")
    if _NUMBER.fullmatch(labels[-1]):
        address = _ipv4(labels)
        return str(address), address
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise URLError("the URL's host is not a valid host name")
    return host, None


def _ascii_host(raw: str) -> str:
    try:
        host = raw.encode("ascii").decode() if raw.isascii() else raw.encode("idna").decode()
    except UnicodeError:
        raise URLError("the URL's host is not a valid host name") from None
    host = host.lower()
    return host[:-1] if host.endswith(".") else host


def _ipv4(labels: list[str]) -> IPv4Address:
    """The address of a numeric host, read as inet_aton does (WHATWG URL "IPv4 parser")."""
    if len(labels) > 4:
        raise URLError("the URL's host is not a valid IPv4 address")
    numbers = []
    for label in labels:
        if not _NUMBER.fullmatch(label):
            raise URLError("the URL's host is not a valid IPv4 address")
        if label.startswith("0x"):
            numbers.append(int(label[2:] or "0", 16))
        elif len(label) > 1 and label.startswith("0"):
            if not set(label) <= set("01234567"):
                raise URLError("the URL's host is not a valid IPv4 address")
            numbers.append(int(label, 8))
        else:
            numbers.append(int(label))
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise URLError("the URL's host is not a valid IPv4 address")
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return IPv4Address(value)

