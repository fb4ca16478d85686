"""KOOP["CONNECTIONS"]: named servers looked up by provider and host, secrets masked."""

from __future__ import annotations

import pytest

from koop_app.connections import (
    MASK,
    UnknownConnectionError,
    connection,
    connections,
    redact_url,
    redacted,
)


@pytest.fixture
def configured(settings):
    settings.KOOP = {**settings.KOOP, "CONNECTIONS": {
        "postgis": {"gis": {"dsn": "postgresql://reader:pw-1@db/gis", "pool_size": 4}},
        "elasticsearch": {"logs": {"url": "https://es:9200", "api_key": "k-2"}},
    }}


def test_a_connection_is_found_by_provider_and_name(configured):
    assert connection("postgis", "gis")["pool_size"] == 4
    assert sorted(connections("elasticsearch")) == ["logs"]
    assert connections("arcgis") == {}
    with pytest.raises(TypeError):
        connection("postgis", "gis")["pool_size"] = 8  # settings are read-only here


@pytest.mark.parametrize(("provider", "name"), [("postgis", "other"), ("arcgis", "gis"),
                                                ("postgis", None)])
def test_an_unknown_connection_is_a_404_naming_it_without_settings(configured, provider, name):
    with pytest.raises(UnknownConnectionError) as caught:
        connection(provider, name)
    assert caught.value.status == 404
    assert repr(name) in caught.value.message and "pw-1" not in caught.value.message


def test_secrets_are_masked_by_key_and_inside_urls():
    values = {"dsn": "postgresql://reader:pw-1@db/gis?sslmode=require", "api_key": "k-2",
              "password": "p-3", "user": "reader", "timeout": 5, "auth": {"token": "t-4"},
              "private_key_id": "x", "url": "https://es/_search?api_key=k-5&size=1"}
    shown = redacted(values)
    text = repr(shown)
    assert not any(secret in text for secret in ("pw-1", "k-2", "p-3", "t-4", "k-5"))
    assert shown["user"] == "reader" and shown["timeout"] == 5
    assert shown["dsn"] == f"postgresql://reader:{MASK}@db/gis?sslmode=require"
    assert shown["url"] == f"https://es/_search?api_key={MASK}&size=1"
    assert redact_url("https://example.com/a?b=1") == "https://example.com/a?b=1"
