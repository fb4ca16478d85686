"""URL spellings: every way of writing an address ends as the address itself."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from koop_app.net.urls import SourceURL, URLError, parse_url

LOOPBACK_SPELLINGS = [
    "http://127.0.0.1/", "http://127.1/", "http://127.0.1/", "http://2130706433/",
    "http://0x7f000001/", "http://0X7F000001/", "http://0x7f.1/", "http://0x7f.0.0.1/",
    "http://0177.0.0.1/", "http://0177.1/", "http://017700000001/", "http://127.0.0.1./",
    "HTTP://127.0.0.1/", "http://１２７.０.０.１/", "http://127。0。0。1/",
]


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS)
def test_ipv4_spellings(url):
    assert parse_url(url).address == ip_address("127.0.0.1")


@pytest.mark.parametrize(("url", "address"), [
    ("http://0/", "0.0.0.0"), ("http://0x/", "0.0.0.0"), ("http://0.0.0.0/", "0.0.0.0"),
    ("http://0xa9fea9fe/", "169.254.169.254"), ("http://2852039166/", "169.254.169.254"),
    ("http://10.1/", "10.0.0.1"), ("http://012.0.0.1/", "10.0.0.1"),
    ("http://[::1]/", "::1"), ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1"),
    ("http://[0:0:0:0:0:ffff:7f00:1]/", "::ffff:127.0.0.1"), ("http://[::]/", "::"),
    ("http://[::127.0.0.1]/", "::7f00:1"), ("http://[FE80::1]/", "fe80::1"),
])
def test_literal_addresses(url, address):
    assert parse_url(url).address == ip_address(address)


def test_names_are_normalized_not_resolved():
    assert parse_url("http://Example.COM./a%20b?x=1#frag") == SourceURL(
        "http", "example.com", 80, "/a%20b?x=1", None)
    assert parse_url("https://bücher.example:8443").host == "xn--bcher-kva.example"
    assert parse_url("https://ｅｘａｍｐｌｅ.com/").host == "example.com"
    assert parse_url("http://0xface.cafe/").address is None  # a name: its last label is a word
    assert parse_url("http://x.test/é?q=ü").target == "/%C3%A9?q=%C3%BC"


@pytest.mark.parametrize("url", [
    "ftp://example.com/x", "file:///etc/passwd", "gopher://127.0.0.1:6379/_", "dict://x/",
    "http://", "http:///x", "http://evil@127.0.0.1/", "http://user:pw@example.com/",
    "http://127.0.0.1\\@evil.example/", "http://exa mple.com/", "http://example.com/\r\nX: y",
    "http://%31%32%37.0.0.1/", "http://256.0.0.1/", "http://1.2.3.4.5/", "http://08.0.0.1/",
    "http://1.16777216/", "http://[fe80::1%25eth0]/", "http://[::1/", "http://a..b/",
    "http://-a.example/", "http://example.com:0/", "http://example.com:99999/",
    "http://example.com:x/", "http://127.0.0.1../", "http://" + "a" * 64 + ".example/",
])
def test_refused_urls(url):
    with pytest.raises(URLError):
        parse_url(url)
