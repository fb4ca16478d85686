"""Rate limits per client: off by default, counted in the cache (file and Redis), fail open."""

from __future__ import annotations

import logging

import orjson
import pytest
from django.core.cache import caches
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

from koop_app.ratelimit import Rate, parse_rate
from koop_app.testing import RedisServer

GEOSERVICES = "/rest/info"
PLAIN = "/admin/login/"


def limit(settings, rate: str | None, **more) -> None:
    settings.KOOP = {**settings.KOOP, "RATE_LIMIT": rate, **more}


def get(client, path: str = GEOSERVICES, address: str = "127.0.0.1", **headers):
    return client.get(path, REMOTE_ADDR=address, HTTP_ORIGIN="https://maps.example", **headers)


def refused_geoservices(response) -> bool:
    if response.status_code != 200 or b'"error"' not in response.content:
        return False
    error = orjson.loads(response.content)["error"]
    assert error["code"] == 429 and error["message"] == "Too many requests."
    assert "At most" in error["details"][0]
    assert int(response["Retry-After"]) >= 1
    assert response["Access-Control-Allow-Origin"] == "*"
    return True


@pytest.mark.django_db
def test_off_by_default(client, settings):
    assert settings.KOOP.get("RATE_LIMIT") is None
    for _ in range(50):
        assert get(client).status_code == 200


@pytest.mark.django_db
def test_geoservices_routes_answer_the_error_body_with_retry_after(client, settings, any_cache):
    limit(settings, "3/day")
    for _ in range(3):
        response = get(client)
        assert response.status_code == 200 and b"currentVersion" in response.content
    assert refused_geoservices(get(client))
    assert refused_geoservices(get(client, "/geojson/rest/services/x/FeatureServer/0/query"))


@pytest.mark.django_db
def test_other_routes_answer_http_429(client, settings, any_cache):
    limit(settings, "2/day")
    assert get(client, PLAIN).status_code == 200
    assert get(client, PLAIN).status_code == 200
    response = get(client, PLAIN)
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert b"Too many requests" in response.content


@pytest.mark.django_db
def test_clients_are_counted_apart(client, settings, any_cache):
    limit(settings, "2/day")
    for _ in range(2):
        get(client, address="127.0.0.1")
    assert refused_geoservices(get(client, address="127.0.0.1"))
    assert get(client, address="127.0.0.2").content.startswith(b'{"currentVersion"')


@pytest.mark.django_db
def test_health_is_not_counted(client, settings):
    limit(settings, "1/day")
    for _ in range(3):
        assert get(client, "/health").status_code in (200, 503)


@pytest.mark.django_db
def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(client, settings):
    limit(settings, "1/day")  # trusted by default: loopback only
    sender = "192.0.2.10"  # REMOTE_ADDR is request metadata: no socket is opened
    assert not refused_geoservices(get(client, address=sender, HTTP_X_FORWARDED_FOR="127.0.0.50"))
    # A forged header changes nothing: the connection's address is the client.
    assert refused_geoservices(get(client, address=sender, HTTP_X_FORWARDED_FOR="127.0.0.51"))


@pytest.mark.django_db
def test_forwarded_for_names_the_client_behind_a_trusted_proxy(client, settings):
    limit(settings, "1/day", TRUSTED_PROXIES=["127.0.0.0/24"])
    proxy = "127.0.0.1"
    assert not refused_geoservices(get(client, address=proxy, HTTP_X_FORWARDED_FOR="127.0.1.7"))
    assert refused_geoservices(get(client, address=proxy, HTTP_X_FORWARDED_FOR="127.0.1.7"))
    # The client's own forged hops on the left are not believed: the rightmost untrusted is.
    assert refused_geoservices(get(client, address=proxy,
                                   HTTP_X_FORWARDED_FOR="127.0.9.9, 127.0.1.7"))
    assert not refused_geoservices(get(client, address=proxy,
                                       HTTP_X_FORWARDED_FOR="127.0.1.8, 127.0.0.2"))


@pytest.mark.django_db
def test_ipv6_clients_count_per_64(client, settings):
    limit(settings, "1/day")
    assert not refused_geoservices(get(client, address="::1"))
    assert refused_geoservices(get(client, address="0:0:0:0:ffff::2"))  # same /64 as ::1
    assert not refused_geoservices(get(client, address="0:0:0:1::1"))


@pytest.mark.django_db
def test_a_redis_outage_lets_requests_through(client, settings, caplog):
    limit(settings, "1/day")
    with RedisServer() as redis:
        settings.CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache",
                                       "LOCATION": redis.url,
                                       "OPTIONS": {"IGNORE_EXCEPTIONS": True,
                                                   "SOCKET_CONNECT_TIMEOUT": 1,
                                                   "SOCKET_TIMEOUT": 1}}}
        assert not refused_geoservices(get(client))
        assert refused_geoservices(get(client))
        redis.stop()
        with caplog.at_level(logging.WARNING, logger="koop_app.ratelimit"):
            for _ in range(3):
                response = get(client)
                assert response.status_code == 200 and b"currentVersion" in response.content
        assert "rate limit not applied" in caplog.text
        caches["default"].close()


@pytest.mark.django_db
def test_a_failing_file_cache_lets_requests_through(client, settings, tmp_path, caplog):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    settings.CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(blocker / "cache")}}
    limit(settings, "1/day")
    with caplog.at_level(logging.WARNING, logger="koop_app.ratelimit"):
        for _ in range(3):
            assert get(client).content.startswith(b'{"currentVersion"')
    assert "rate limit not applied" in caplog.text


def test_rates():
    assert parse_rate("600/minute") == Rate(600, 60)
    assert parse_rate(" 10 / s") == Rate(10, 1)
    assert parse_rate("5000/hour") == Rate(5000, 3600)
    assert parse_rate("1/day") == Rate(1, 86400)
    for bad in ("600", "ten/minute", "10/week", "0/second"):
        with pytest.raises(ImproperlyConfigured, match="RATE_LIMIT"):
            parse_rate(bad)


def test_bad_settings_fail_the_checks(settings):
    limit(settings, "lots/minute", TRUSTED_PROXIES=[])
    assert "koop_app.E051" in {m.id for m in run_checks()}
    limit(settings, None, TRUSTED_PROXIES=["not a network"])
    assert "koop_app.E051" in {m.id for m in run_checks()}
    limit(settings, None, MAX_OBJECT_IDS=0, QUERY_TIMEOUT_SECONDS=-1)
    ids = {m.id for m in run_checks()}
    assert {"koop_app.E052", "koop_app.E053"} <= ids
