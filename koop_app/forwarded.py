"""Requests relayed by a trusted reverse proxy: ``ForwardedMiddleware`` applies its headers.

Behind Caddy or nginx terminating TLS, the app is called as ``http://127.0.0.1:8000``; every
absolute URL it writes (the catalog's service URLs, ``tokenServicesUrl``) would then name that
address, and a browser on the https page refuses them as mixed content. When the connection
comes from a network in ``KOOP["TRUSTED_PROXIES"]``, this middleware makes the request what
the client sent to the proxy:

- scheme, host and port from RFC 7239 ``Forwarded`` (``proto``, ``host``, ``for``) when the
  proxy sends it, else from ``X-Forwarded-Proto``, ``-Host``, ``-Port``;
- the client's address (``REMOTE_ADDR``, used by the rate limit, the login throttle and
  IP-bound tokens) from ``Forwarded: for=`` or ``X-Forwarded-For``, read from the right:
  each proxy appends the address that called it, so the first address that is not a trusted
  proxy is the client and anything left of it may be forged;
- a path prefix from ``X-Forwarded-Prefix`` when the proxy serves the site under a sub-path
  (``/koop``) and strips it: URLs from ``reverse()`` then carry it.

A forwarded host must pass ``ALLOWED_HOSTS`` like a Host header (else HTTP 400, or the
GeoServices error under ``/rest/``). A sender that is not a trusted proxy has its forwarded
headers removed, so nothing later believes them; the one header Django's own
``SECURE_PROXY_SSL_HEADER`` names is left alone, since that setting trusts it explicitly.

    MIDDLEWARE = ["koop_app.outputs.geoservices.middleware.GeoServicesErrorMiddleware",
                  "koop_app.forwarded.ForwardedMiddleware", ...]
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port
from django.urls import get_script_prefix, set_script_prefix

from koop_app.conf import koop_settings
from koop_app.net.addresses import canonical

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

FORWARDED_HEADERS = ("HTTP_FORWARDED", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO",
                     "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_PREFIX")
DEFAULT_PORTS = {"http": "80", "https": "443"}

# RFC 7239 section 4: pairs of token "=" (token / quoted-string), ";" within an element, ","
# between elements. Unquoted values are read leniently (":" and "[]" too): proxies configured
# as `for=$remote_addr;host=$http_host` send IPv6 addresses and ports unquoted.
_PAIR = re.compile(r"""\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*"""  # name =
                   r"""(?:"((?:[^"\\]|\\.)*)"|([^\s,;"]+))\s*""")  # "quoted" or plain
_ESCAPE = re.compile(r"\\(.)")
# A path prefix: segments of URL path characters, no "." or ".." segments, no "//".
_PREFIX = re.compile(r"(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+/?")


@functools.lru_cache(maxsize=16)
def _networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    try:
        return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)
    except ValueError as exc:
        raise ImproperlyConfigured(f"KOOP['TRUSTED_PROXIES']: {exc}") from None


def trusted_proxies() -> tuple[IPNetwork, ...]:
    """The networks of KOOP['TRUSTED_PROXIES'] (ImproperlyConfigured for a bad entry)."""
    return _networks(tuple(str(entry) for entry in koop_settings.TRUSTED_PROXIES or ()))


def is_trusted(address: IPAddress | None, proxies: Sequence[IPNetwork]) -> bool:
    if address is None:
        return False
    address = canonical(address)  # ::ffff:127.0.0.1 is 127.0.0.1
    return any(address in net for net in proxies)


def parse_address(text: str) -> IPAddress | None:
    """An address as proxies write it: ``1.2.3.4``, ``1.2.3.4:80``, ``::1``, ``[::1]:80``.

    None for anything else (RFC 7239's ``unknown`` and ``_obfuscated`` names included).
    """
    text = text.strip().strip('"').strip()
    if text.startswith("["):
        text, closed, _ = text[1:].partition("]")
        if not closed:
            return None
    elif text.count(":") == 1:  # IPv4 with a port; bare IPv6 has several colons
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def parse_forwarded(header: str) -> list[dict[str, str]] | None:
    """The elements of a ``Forwarded`` header, each {parameter: value}; None if malformed."""
    elements: list[dict[str, str]] = [{}]
    position = 0
    while position < len(header):
        char = header[position]
        if char in " \t;":
            position += 1
        elif char == ",":
            elements.append({})
            position += 1
        else:
            match = _PAIR.match(header, position)
            if match is None:
                return None
            name = match.group(1).lower()
            if name in elements[-1]:  # each parameter at most once per element (section 4)
                return None
            quoted, plain = match.group(2), match.group(3)
            elements[-1][name] = _ESCAPE.sub(r"\1", quoted) if quoted is not None else plain
            position = match.end()
            if position < len(header) and header[position] not in ",;":
                return None  # two pairs with no separator, or a stray quote
    return [element for element in elements if element]


@dataclass(frozen=True)
class Forwarding:
    """What the client sent to the outermost trusted proxy (None: keep the connection's)."""

    proto: str | None = None
    host: str | None = None
    port: str | None = None
    client: IPAddress | None = None
    prefix: str | None = None


def _walk(addresses: list[IPAddress | None], proxies: Sequence[IPNetwork]
          ) -> tuple[IPAddress | None, int]:
    """From the right: (the client, how many entries were read to reach it)."""
    client: IPAddress | None = None
    for count, address in enumerate(reversed(addresses), start=1):
        client = address
        if not is_trusted(address, proxies):
            return client, count
    return client, max(len(addresses), 1)


def _pick(header: str | None, hop: int) -> str | None:
    """The ``hop``-th value from the right of a comma list (the one the client's proxy set).

    A proxy that appends instead of setting adds one value per hop, as in X-Forwarded-For;
    when there are fewer values than hops the leftmost is the outermost one we have.
    """
    if not header:
        return None
    values = [value.strip() for value in header.split(",")]
    value = values[-hop] if hop <= len(values) else values[0]
    return value or None


def from_forwarded(elements: list[dict[str, str]], proxies: Sequence[IPNetwork]) -> Forwarding:
    addresses = [parse_address(element["for"]) if "for" in element else None
                 for element in elements]
    client, count = _walk(addresses, proxies)
    element = elements[-count]
    return Forwarding(proto=element.get("proto"), host=element.get("host"), client=client)


def from_x_forwarded(meta: dict[str, Any], proxies: Sequence[IPNetwork]) -> Forwarding:
    chain = meta.get("HTTP_X_FORWARDED_FOR", "")
    addresses = [parse_address(entry) for entry in chain.split(",")] if chain.strip() else []
    client, hop = _walk(addresses, proxies) if addresses else (None, 1)
    return Forwarding(proto=_pick(meta.get("HTTP_X_FORWARDED_PROTO"), hop),
                      host=_pick(meta.get("HTTP_X_FORWARDED_HOST"), hop),
                      port=_pick(meta.get("HTTP_X_FORWARDED_PORT"), hop),
                      client=client)


def forwarding_of(meta: dict[str, Any], proxies: Sequence[IPNetwork]) -> Forwarding | None:
    """What a trusted proxy says of the request, or None when the sender is not one."""
    if not is_trusted(parse_address(meta.get("REMOTE_ADDR", "")), proxies):
        return None
    prefix = _pick(meta.get("HTTP_X_FORWARDED_PREFIX"), 1)
    header = meta.get("HTTP_FORWARDED")
    if header is not None:
        elements = parse_forwarded(header)
        # A malformed header is not guessed at: the connection's own values stay.
        found = from_forwarded(elements, proxies) if elements else Forwarding()
    else:
        found = from_x_forwarded(meta, proxies)
    return Forwarding(proto=found.proto, host=found.host, port=found.port, client=found.client,
                      prefix=prefix)


def client_address(meta: dict[str, Any]) -> IPAddress | None:
    """The client: the connection's address, or the one a trusted proxy names."""
    remote = parse_address(meta.get("REMOTE_ADDR", ""))
    proxies = trusted_proxies()
    if proxies and is_trusted(remote, proxies):
        forwarding = forwarding_of(meta, proxies)
        if forwarding is not None and forwarding.client is not None:
            return forwarding.client
    return remote


def _host_with_port(host: str, port: str | None, scheme: str) -> str:
    """``host`` with the forwarded port (it wins), without the scheme's default port.

    A host that does not parse is returned as it is, for ``get_host()`` to refuse.
    """
    domain, own_port = split_domain_port(host)
    if not domain:
        return host
    if port and port.isdigit() and 0 < int(port) < 65536:
        own_port = str(int(port))
    if own_port == DEFAULT_PORTS.get(scheme):
        own_port = ""
    return f"{domain}:{own_port}" if own_port else domain


class ForwardedMiddleware:
    """Applies a trusted proxy's forwarded headers to the request; see the module docstring."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        forwarding = forwarding_of(meta, trusted_proxies())
        if forwarding is None:
            kept = (getattr(settings, "SECURE_PROXY_SSL_HEADER", None) or (None,))[0]
            for name in FORWARDED_HEADERS:
                if name != kept:
                    meta.pop(name, None)
            return self.get_response(request)
        self.apply(request, forwarding)
        prefix = forwarding.prefix
        if prefix is None or not _PREFIX.fullmatch(prefix) or settings.FORCE_SCRIPT_NAME:
            return self.get_response(request)
        # The proxy serves the site under a sub-path and strips it: routing still reads
        # path_info, URLs from reverse() and request.path carry the prefix.
        prefix = prefix.rstrip("/")
        meta["SCRIPT_NAME"] = prefix
        request.path = prefix + request.path_info
        script_prefix = get_script_prefix()
        set_script_prefix(prefix + "/")
        try:
            return self.get_response(request)
        finally:
            set_script_prefix(script_prefix)  # reverse() outside this request is unprefixed

    @staticmethod
    def apply(request: HttpRequest, forwarding: Forwarding) -> None:
        meta = request.META
        for name in FORWARDED_HEADERS:  # used up here: nothing later reads them again
            meta.pop(name, None)
        scheme = (forwarding.proto or "").strip().lower()
        if scheme in DEFAULT_PORTS:
            _set_scheme(request, scheme)
        else:
            scheme = request.scheme
        host = forwarding.host
        if host is None and (forwarding.port or forwarding.proto):
            host = meta.get("HTTP_HOST")  # a new port or scheme changes the Host's port too
        if host is not None:
            host = _host_with_port(host, forwarding.port, scheme)
            meta["HTTP_HOST"] = host
            request.get_host()  # DisallowedHost (HTTP 400) unless it passes ALLOWED_HOSTS
            _, port = split_domain_port(host)
            meta["SERVER_PORT"] = port or DEFAULT_PORTS[scheme]
        elif forwarding.proto:  # no Host at all (HTTP/1.0): the scheme's port, not the app's
            meta["SERVER_PORT"] = DEFAULT_PORTS[scheme]
        if forwarding.client is not None:
            meta["REMOTE_ADDR"] = str(forwarding.client)


def _set_scheme(request: HttpRequest, scheme: str) -> None:
    """``request.scheme`` (hence ``is_secure()`` and absolute URLs) under WSGI and ASGI."""
    if "wsgi.url_scheme" in request.META:  # WSGIRequest: META is the WSGI environ
        request.META["wsgi.url_scheme"] = scheme
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict):  # ASGIRequest reads the scheme from its (per-request) scope
        scope["scheme"] = scheme
