"""The address rules: every special-purpose block refused, public unicast allowed."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from koop_app.net.addresses import (
    BLOCKED_IPV4,
    BLOCKED_IPV6,
    IPV6_LABELS,
    canonical,
    embedded_ipv4,
    refusal_reason,
)

REFUSED = [
    "0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255", "100.64.0.1", "100.127.255.255",
    "127.0.0.1", "127.255.255.254", "169.254.169.254", "172.16.0.1", "172.31.255.255",
    "192.0.0.1", "192.0.0.9", "192.0.2.1", "192.88.99.1", "192.168.1.1", "198.18.0.1",
    "198.19.255.255", "198.51.100.7", "203.0.113.9", "224.0.0.1", "239.255.255.250",
    "240.0.0.1", "255.255.255.255",
    "::", "::1", "::127.0.0.1", "::10.0.0.1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    "::ffff:169.254.169.254", "::ffff:0.0.0.0", "100::1", "fc00::1", "fd12:3456::1", "fe80::1",
    "febf::1", "fec0::1", "ff02::1", "ff0e::1", "64:ff9b::10.0.0.1", "64:ff9b::127.0.0.1",
    "64:ff9b:1::8.8.8.8", "2002:a00:1::1", "2002:7f00:1::1", "2002:a9fe:a9fe::",
    "2001::1", "2001:0:4136:e378:8000:63bf:f5ff:fffe", "2001:2::1", "2001:db8::1",
    "2001:10::1", "2001:20::1", "3fff::1", "5f00::1", "4000::1", "fe80::1%eth0",
]
ALLOWED = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "100.63.255.255", "100.128.0.0",
           "172.15.255.255", "172.32.0.0", "192.169.0.0", "198.20.0.0", "223.255.255.255",
           "2606:4700:4700::1111", "2a00:1450:4001::1", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8",
           "2002:808:808::1", "2001:200::1"]


@pytest.mark.parametrize("text", REFUSED)
def test_refused(text):
    assert refusal_reason(ip_address(text), allowed=[]) is not None


@pytest.mark.parametrize("text", ALLOWED)
def test_allowed(text):
    assert refusal_reason(ip_address(text), allowed=[]) is None


@pytest.mark.parametrize(("text", "label"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::", "unspecified"),
    ("::ffff:10.0.0.1", "private"), ("169.254.169.254", "link-local"),
    ("100.64.0.1", "CGNAT"), ("fd00::1", "unique local"), ("::10.0.0.1", "IPv4-compatible"),
    ("64:ff9b::10.0.0.1", "NAT64/6to4"), ("2001:0:4136:e378::1", "Teredo"),
])
def test_reasons_name_the_rule(text, label):
    assert label in refusal_reason(ip_address(text), allowed=[])


def test_every_block_is_refused_end_to_end():
    for network, _ in BLOCKED_IPV4 + BLOCKED_IPV6 + IPV6_LABELS:
        for address in (network.network_address, network.broadcast_address):
            assert refusal_reason(address, allowed=[]) is not None, address


def test_allowed_networks_open_only_what_they_list():
    loopback = [ip_network("127.0.0.1/32"), ip_network("::1/128")]
    assert refusal_reason(ip_address("127.0.0.1"), allowed=loopback) is None
    assert refusal_reason(ip_address("::ffff:127.0.0.1"), allowed=loopback) is None  # same host
    assert refusal_reason(ip_address("::1"), allowed=loopback) is None
    for other in ("127.0.0.2", "0.0.0.0", "10.0.0.1", "::", "64:ff9b::127.0.0.1",
                  "2002:7f00:1::1", "::127.0.0.1"):
        assert refusal_reason(ip_address(other), allowed=loopback) is not None, other


def test_allowed_networks_come_from_the_setting(settings):
    settings.KOOP = {**settings.KOOP, "ALLOWED_SOURCE_NETWORKS": ["10.1.0.0/16"]}
    assert refusal_reason(ip_address("10.1.2.3")) is None
    assert refusal_reason(ip_address("::ffff:10.1.2.3")) is None
    assert refusal_reason(ip_address("10.2.0.1")) is not None
    settings.KOOP = {**settings.KOOP, "ALLOWED_SOURCE_NETWORKS": []}
    assert refusal_reason(ip_address("10.1.2.3")) is not None


def test_canonical_and_embedded_forms():
    assert canonical(ip_address("::ffff:7f00:1")) == IPv4Address("127.0.0.1")
    assert canonical(ip_address("::1")) == IPv6Address("::1")
    assert embedded_ipv4(IPv6Address("64:ff9b::a00:1")) == IPv4Address("10.0.0.1")
    assert embedded_ipv4(IPv6Address("2002:a00:1::")) == IPv4Address("10.0.0.1")
    assert embedded_ipv4(IPv6Address("2606:4700::1")) is None


def _addresses() -> st.SearchStrategy:
    """Addresses anywhere, and many inside the blocks where the rules have edges."""
    anywhere = st.one_of(st.integers(0, 2**32 - 1).map(IPv4Address),
                         st.integers(0, 2**128 - 1).map(IPv6Address))
    edges = [ip_network(n) for n in (
        "0.0.0.0/0", "2000::/3", "2001::/16", "2002::/16", "64:ff9b::/96", "::ffff:0:0/96",
        "::/96", "100.0.0.0/8", "192.0.0.0/8", "198.0.0.0/8", "fc00::/6")]
    near = st.sampled_from(edges).flatmap(lambda net: st.integers(
        int(net.network_address), int(net.broadcast_address)).map(
        IPv4Address if net.version == 4 else IPv6Address))
    return st.one_of(anywhere, near)


@given(_addresses())
def test_what_we_allow_python_also_calls_global(address):
    # Our rules are at least as strict as ipaddress's is_global, on the address really reached.
    if refusal_reason(address, allowed=[]) is None:
        assert canonical(address).is_global, address


def test_system_check_on_the_setting(settings):
    from koop_app.checks import check_fetch_policy

    settings.KOOP = {**settings.KOOP, "ALLOWED_SOURCE_NETWORKS": ["10.1.0.0/16", "::1/128"]}
    assert check_fetch_policy() == []
    settings.KOOP = {**settings.KOOP, "ALLOWED_SOURCE_NETWORKS": ["10.1.0.0/33", "0.0.0.0/0"]}
    assert [m.id for m in check_fetch_policy()] == ["koop_app.E040", "koop_app.W040"]
    # At run time a broken entry allows nothing, the rest still apply.
    settings.KOOP = {**settings.KOOP, "ALLOWED_SOURCE_NETWORKS": ["nonsense", "10.1.0.0/16"]}
    assert refusal_reason(ip_address("10.1.0.1")) is None
    assert refusal_reason(ip_address("10.2.0.1")) is not None
