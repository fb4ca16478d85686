"""Which IP addresses a source may be fetched from: public unicast only, unless allowed.

    refusal_reason(ip_address("10.0.0.1"))   # "private (RFC 1918)"
    refusal_reason(ip_address("8.8.8.8"))    # None: allowed

The rules are written out here rather than taken from ``ipaddress``'s ``is_global``, whose
tables changed between Python releases (2001::/23, 192.0.0.0/24, 64:ff9b:1::/48); the tests
check that everything allowed here is also ``is_global``. ``KOOP['ALLOWED_SOURCE_NETWORKS']``
lists CIDRs that are allowed anyway (e.g. a source on the same private network).

An IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) *is* its IPv4 address: the kernel connects
over IPv4. It is turned into that address first, so every spelling meets the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

from koop_app.conf import koop_settings

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network


def _table(rows: Iterable[tuple[str, str]]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ip_network(cidr), label) for cidr, label in rows)


# IANA IPv4 special-purpose registry (RFC 6890 and successors), whole blocks refused.
BLOCKED_IPV4 = _table([
    ("0.0.0.0/8", "unspecified / 'this network' (0.0.0.0 reaches loopback)"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "shared address space / CGNAT (RFC 6598)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata services live here)"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.88.99.0/24", "6to4 relay anycast (deprecated)"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved / broadcast"),
])

# IPv6 sources must be global unicast (2000::/3, RFC 4291) outside these blocks. Everything
# else (::, ::1, IPv4-compatible ::/96, 100::/64, fc00::/7, fe80::/10, fec0::/10, ff00::/8)
# falls outside 2000::/3 and is refused by that rule, with a label from IPV6_LABELS.
GLOBAL_UNICAST_IPV6 = ip_network("2000::/3")
BLOCKED_IPV6 = _table([
    ("2001::/23", "IETF protocol assignments (Teredo, benchmarking, ORCHID)"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation (RFC 9637)"),
])
IPV6_LABELS = _table([
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "IPv4-compatible (deprecated)"),
    ("100::/64", "discard-only"),
    ("fc00::/7", "unique local (private)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
])
# Forms that carry an IPv4 address: usable only when that address would be allowed itself.
NAT64 = ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix, address in the low 32 bits
SIX_TO_FOUR = ip_network("2002::/16")  # RFC 3056, address in bits 16..48


def allowed_networks() -> list[IPNetwork]:
    """``KOOP['ALLOWED_SOURCE_NETWORKS']`` parsed (host bits are ignored: 10.1.2.3/8 = 10/8).

    An entry that is not a network allows nothing (the system check koop_app.E040 names it).
    """
    networks = []
    for cidr in koop_settings.ALLOWED_SOURCE_NETWORKS or ():
        try:
            networks.append(ip_network(str(cidr).strip(), strict=False))
        except ValueError:
            continue
    return networks


def canonical(address: IPAddress) -> IPAddress:
    """The address the kernel really connects to: IPv4-mapped IPv6 becomes IPv4."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address a NAT64 or 6to4 address leads to, if it is one."""
    if address in NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    if address in SIX_TO_FOUR:
        return IPv4Address((int(address) >> 80) & 0xFFFFFFFF)
    return None


def refusal_reason(address: IPAddress, allowed: Iterable[IPNetwork] | None = None
                   ) -> str | None:
    """Why ``address`` may not be fetched from (a label for logs), or None when it may.

    ``allowed`` defaults to ``KOOP['ALLOWED_SOURCE_NETWORKS']``.
    """
    address = canonical(address)
    networks = allowed_networks() if allowed is None else list(allowed)
    if any(address.version == net.version and address in net for net in networks):
        return None
    if isinstance(address, IPv4Address):
        return _label(address, BLOCKED_IPV4)
    return _ipv6_reason(address)


def _ipv6_reason(address: IPv6Address) -> str | None:
    if address.scope_id:
        return "scoped (zone) address"
    inner = embedded_ipv4(address)
    if inner is not None:
        # The allow-list does not reach through a translator: only public IPv4 inside.
        reason = _label(inner, BLOCKED_IPV4)
        return f"NAT64/6to4 form of {inner}, {reason}" if reason else None
    if address not in GLOBAL_UNICAST_IPV6:
        return _label(address, IPV6_LABELS) or "outside IPv6 global unicast (2000::/3)"
    return _label(address, BLOCKED_IPV6)


def _label(address: IPAddress, table: tuple[tuple[IPNetwork, str], ...]) -> str | None:
    # Most specific block first, so ::1 reads "loopback" rather than "IPv4-compatible".
    matches = [(net.prefixlen, label) for net, label in table
               if net.version == address.version and address in net]
    return max(matches)[1] if matches else None
