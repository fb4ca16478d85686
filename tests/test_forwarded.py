"""A trusted proxy's Forwarded / X-Forwarded-* headers: parsed, walked, applied or ignored."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django.urls import reverse

from koop_app.forwarded import ForwardedMiddleware, parse_address, parse_forwarded
from tests.conftest import collection, feature, point

PROXY = "127.0.0.1"  # loopback: trusted by default
STRANGER = "192.0.2.10"  # REMOTE_ADDR is request metadata: no socket is opened
CLIENT = "198.51.100.7"


def through(remote: str = PROXY, path: str = "/rest/info", **headers: str) -> HttpRequest:
    """The request as the views see it after the middleware."""
    seen: list[HttpRequest] = []

    def view(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return HttpResponse("ok")

    request = RequestFactory().get(path, REMOTE_ADDR=remote,
                                   **{"HTTP_HOST": "127.0.0.1:8000", **headers})
    ForwardedMiddleware(view)(request)
    return seen[0]


def seen_as(request: HttpRequest) -> tuple[str, str, bool]:
    return request.build_absolute_uri("/rest/services"), request.META["REMOTE_ADDR"], \
        request.is_secure()


# --- Parsing -------------------------------------------------------------------------------

def test_forwarded_elements_and_quoted_values():
    assert parse_forwarded('for=192.0.2.60;proto=http;by=203.0.113.43') == [
        {"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}]
    assert parse_forwarded('For="[2001:db8:cafe::17]:4711", for=192.0.2.43;HOST="a.example"') \
        == [{"for": "[2001:db8:cafe::17]:4711"}, {"for": "192.0.2.43", "host": "a.example"}]
    assert parse_forwarded('for="a\\"b, c";proto=https') == [{"for": 'a"b, c', "proto": "https"}]
    assert parse_forwarded("for=::1;host=example.org:8443") == [
        {"for": "::1", "host": "example.org:8443"}]  # nginx-style unquoted values are read
    assert parse_forwarded(" , for=unknown ,") == [{"for": "unknown"}]


@pytest.mark.parametrize("header", ['for="unterminated', "for", "for=", "=x", "for=a b=c",
                                    "for=a;for=b", 'for=a"b"', "proto=https;;host"])
def test_malformed_forwarded_headers_are_refused(header):
    assert parse_forwarded(header) is None


@pytest.mark.parametrize(("text", "address"), [
    ("192.0.2.1", "192.0.2.1"), ("192.0.2.1:8080", "192.0.2.1"), ("2001:db8::1", "2001:db8::1"),
    ("[2001:db8::1]:4711", "2001:db8::1"), ('"[2001:db8::1]"', "2001:db8::1"),
    (" 10.0.0.1 ", "10.0.0.1"), ("fe80::1%eth0", "fe80::1"),
    ("unknown", None), ("_hidden", None), ("", None), ("999.1.1.1", None), ("[::1", None)])
def test_node_addresses(text, address):
    parsed = parse_address(text)
    assert (str(parsed) if parsed is not None else None) == address


# --- Trusted vs untrusted senders ----------------------------------------------------------

def test_a_trusted_proxys_x_forwarded_headers_are_applied():
    request = through(HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_HOST="localhost",
                      HTTP_X_FORWARDED_FOR=CLIENT)
    assert seen_as(request) == ("https://localhost/rest/services", CLIENT, True)
    assert "HTTP_X_FORWARDED_FOR" not in request.META  # used up


def test_an_untrusted_senders_headers_are_ignored_and_removed(settings):
    request = through(STRANGER, HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_HOST="localhost",
                      HTTP_X_FORWARDED_FOR=CLIENT, HTTP_FORWARDED="for=1.2.3.4;proto=https",
                      HTTP_X_FORWARDED_PREFIX="/koop")
    assert seen_as(request) == ("http://127.0.0.1:8000/rest/services", STRANGER, False)
    assert not [name for name in request.META if "FORWARDED" in name]
    # Django's own SECURE_PROXY_SSL_HEADER trusts its header explicitly: left for it to read.
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    request = through(STRANGER, HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_FOR=CLIENT)
    assert request.META["HTTP_X_FORWARDED_PROTO"] == "https" and request.is_secure()
    assert "HTTP_X_FORWARDED_FOR" not in request.META


def test_trusted_proxies_setting(settings):
    settings.KOOP = {**settings.KOOP, "TRUSTED_PROXIES": []}
    assert seen_as(through(HTTP_X_FORWARDED_PROTO="https"))[2] is False
    settings.KOOP = {**settings.KOOP, "TRUSTED_PROXIES": ["192.0.2.0/24"]}
    assert seen_as(through(STRANGER, HTTP_X_FORWARDED_PROTO="https"))[2] is True
    assert seen_as(through(PROXY, HTTP_X_FORWARDED_PROTO="https"))[2] is False


def test_forwarded_walks_from_the_right_past_trusted_hops():
    # client -> edge proxy (127.0.0.5) -> local proxy (127.0.0.1) -> app; the client forged
    # the leftmost element.
    header = ('for=203.0.113.66;proto=https;host=evil.example, '
              f'for={CLIENT};proto=https;host=localhost, for=127.0.0.5;proto=http;host=inner')
    request = through(HTTP_FORWARDED=header)
    assert seen_as(request) == ("https://localhost/rest/services", CLIENT, True)


def test_forwarded_wins_over_x_forwarded():
    request = through(HTTP_FORWARDED=f'for="{CLIENT}:5000";proto=https;host="localhost:8443"',
                      HTTP_X_FORWARDED_PROTO="http", HTTP_X_FORWARDED_FOR="192.0.2.99")
    assert seen_as(request) == ("https://localhost:8443/rest/services", CLIENT, True)


def test_x_forwarded_lists_are_read_at_the_clients_hop():
    request = through(HTTP_X_FORWARDED_FOR=f"203.0.113.66, {CLIENT}, 127.0.0.5",
                      HTTP_X_FORWARDED_PROTO="http, https, http",
                      HTTP_X_FORWARDED_HOST="evil.example, localhost, inner")
    assert seen_as(request) == ("https://localhost/rest/services", CLIENT, True)
    # Every hop trusted (a request from this host through the proxy): the leftmost is the client.
    request = through(HTTP_X_FORWARDED_FOR="127.0.0.9, 127.0.0.5")
    assert request.META["REMOTE_ADDR"] == "127.0.0.9"


def test_ipv6_senders_and_clients():
    request = through("::1", HTTP_FORWARDED='for="[2001:db8::7]:4711";proto=https',
                      HTTP_HOST="[::1]:8443")
    assert seen_as(request) == ("https://[::1]:8443/rest/services", "2001:db8::7", True)
    request = through("::ffff:127.0.0.1", HTTP_X_FORWARDED_FOR="2001:db8::8",
                      HTTP_X_FORWARDED_PROTO="https")
    assert request.META["REMOTE_ADDR"] == "2001:db8::8" and request.is_secure()


def test_ports():
    def url(**headers: str) -> str:
        return seen_as(through(**headers))[0]

    assert url(HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_HOST="localhost:443") == \
        "https://localhost/rest/services"
    assert url(HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_HOST="localhost",
               HTTP_X_FORWARDED_PORT="8443") == "https://localhost:8443/rest/services"
    # The port alone changes the Host's port; a scheme alone drops the app's port only if it
    # is the scheme's default.
    assert url(HTTP_X_FORWARDED_PORT="8080") == "http://127.0.0.1:8080/rest/services"
    assert url(HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_PORT="443") == \
        "https://127.0.0.1/rest/services"


@pytest.mark.parametrize(("headers", "expected"), [
    ({"HTTP_X_FORWARDED_PROTO": "ftp"}, ("http://127.0.0.1:8000/rest/services", PROXY, False)),
    ({"HTTP_X_FORWARDED_PORT": "http"}, ("http://127.0.0.1:8000/rest/services", PROXY, False)),
    ({"HTTP_X_FORWARDED_PORT": "99999"}, ("http://127.0.0.1:8000/rest/services", PROXY, False)),
    ({"HTTP_X_FORWARDED_FOR": "not-an-address"},
     ("http://127.0.0.1:8000/rest/services", PROXY, False)),
    ({"HTTP_X_FORWARDED_FOR": f"{CLIENT}, garbage"},  # a broken hop ends the walk
     ("http://127.0.0.1:8000/rest/services", PROXY, False)),
    ({"HTTP_FORWARDED": 'for="broken', "HTTP_X_FORWARDED_PROTO": "https"},  # not guessed at
     ("http://127.0.0.1:8000/rest/services", PROXY, False)),
    ({"HTTP_FORWARDED": "for=unknown;proto=https"},
     ("https://127.0.0.1:8000/rest/services", PROXY, True)),
], ids=["proto", "port-word", "port-range", "for", "for-hop", "forwarded", "for-unknown"])
def test_bad_values_are_not_applied(headers, expected):
    assert seen_as(through(**headers)) == expected


def test_a_forwarded_host_must_be_allowed():
    with pytest.raises(DisallowedHost):
        through(HTTP_X_FORWARDED_HOST="evil.example")
    with pytest.raises(DisallowedHost):
        through(HTTP_FORWARDED="host=evil.example")
    with pytest.raises(DisallowedHost):
        through(HTTP_X_FORWARDED_HOST="local host")


def test_a_prefix_from_the_proxy():
    request = through(HTTP_X_FORWARDED_PREFIX="/koop/", HTTP_X_FORWARDED_PROTO="https",
                      HTTP_X_FORWARDED_HOST="localhost")
    assert request.path == "/koop/rest/info" and request.path_info == "/rest/info"
    assert request.build_absolute_uri() == "https://localhost/koop/rest/info"
    assert reverse("koop:geoservices-catalog") == "/rest/services"  # only during the request
    for bad in ("koop", "/../admin", "/a//b", '/"x"', "/a/./b"):
        assert through(HTTP_X_FORWARDED_PREFIX=bad).path == "/rest/info", bad


# --- Through the whole site ----------------------------------------------------------------

def json_of(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.content[:200]
    return orjson.loads(response.content)


@pytest.mark.django_db
def test_every_absolute_url_honours_the_proxy(client, make_dataset):
    make_dataset("geojson", "points", collection([feature({"a": 1}, point(1, 2))]))
    behind = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_HOST": "localhost:8443",
              "HTTP_X_FORWARDED_PREFIX": "/gis"}
    info = json_of(client.get("/rest/info", **behind))
    assert info["authInfo"]["tokenServicesUrl"] == "https://localhost:8443/gis/rest/generateToken"
    provider = json_of(client.get("/geojson/rest/info", **behind))
    assert provider["authInfo"]["tokenServicesUrl"] == (
        "https://localhost:8443/gis/geojson/rest/generateToken")
    folder = json_of(client.get("/rest/services/geojson", **behind))
    assert folder["services"][0]["url"] == (
        "https://localhost:8443/gis/rest/services/geojson/points/FeatureServer")
    plain = json_of(client.get("/rest/services/geojson", REMOTE_ADDR=STRANGER, **behind))
    assert plain["services"][0]["url"] == (
        "http://testserver/rest/services/geojson/points/FeatureServer")


@pytest.mark.django_db
def test_a_disallowed_forwarded_host_is_a_geoservices_error_or_a_400(client):
    error = json_of(client.get("/rest/info", HTTP_X_FORWARDED_HOST="evil.example"))["error"]
    assert error["code"] == 400
    assert client.get("/admin/login/", HTTP_X_FORWARDED_HOST="evil.example").status_code == 400


@pytest.mark.django_db
def test_https_only_tokens_behind_the_proxy(client, settings, django_user_model):
    settings.KOOP = {**settings.KOOP, "TOKEN_HTTPS_ONLY": True}
    django_user_model.objects.create_user("ann", "ann@example.org", "pw-for-ann-1")
    credentials = {"username": "ann", "password": "pw-for-ann-1"}
    answer = json_of(client.post("/rest/generateToken", credentials,
                                 HTTP_X_FORWARDED_PROTO="https"))
    assert answer["ssl"] is True and answer["token"]
    refused = json_of(client.post("/rest/generateToken", credentials, REMOTE_ADDR=STRANGER,
                                  HTTP_X_FORWARDED_PROTO="https"))
    assert refused["error"]["code"] == 400


@pytest.mark.django_db
def test_the_rate_limit_counts_the_forwarded_client(client, settings):
    settings.KOOP = {**settings.KOOP, "RATE_LIMIT": "1/day"}

    def refused(address: str) -> bool:
        body = json_of(client.get("/rest/info", HTTP_FORWARDED=f'for="{address}"'))
        return "error" in body

    assert not refused(CLIENT)
    assert refused(CLIENT)
    assert not refused("198.51.100.8")
    assert not refused("[2001:db8::1]:80")
    assert refused("[2001:db8::2]")  # the same /64
