"""Tokens: each way of sending one, expiry, revocation, client binding, tampering."""

from __future__ import annotations

import time

import orjson
import pytest
from django.core import signing

from koop_app.auth import tokens
from tests.auth.conftest import BASE, PASSWORD, code_of, fetch, token


@pytest.fixture
def vault(secured, alice):
    return secured("signed-in")


def features(body: dict) -> int:
    assert "features" in body, body
    return len(body["features"])


@pytest.mark.django_db
class TestSources:
    def test_query_string(self, client, vault):
        assert features(fetch(client, token=token(client))) == 2

    def test_form_body(self, client, vault):
        body = orjson.loads(client.post(BASE + "/0/query", {"where": "1=1",
                                                            "token": token(client)}).content)
        assert features(body) == 2

    @pytest.mark.parametrize("header", ["HTTP_AUTHORIZATION", "HTTP_X_ESRI_AUTHORIZATION"])
    def test_bearer_headers(self, client, vault, header):
        assert features(fetch(client, **{header: f"Bearer {token(client)}"})) == 2

    def test_other_authorization_schemes_are_not_tokens(self, client, vault):
        assert code_of(fetch(client, HTTP_AUTHORIZATION="Basic YWxpY2U6eA==")) == 499

    def test_missing_token_is_499(self, client, vault):
        assert fetch(client) == {"error": {"code": 499, "message": "Token Required",
                                           "details": []}}

    @pytest.mark.parametrize("bad", ["x", "a" * 5000, "eyJ1IjoxfQ:1abc:xyz"])
    def test_garbage_is_498(self, client, vault, bad):
        assert fetch(client, token=bad) == {"error": {"code": 498, "message": "Invalid Token",
                                                      "details": []}}

    def test_a_token_signed_for_something_else_is_498(self, client, vault, alice):
        forged = signing.dumps({"u": alice.pk, "g": 0, "x": 2**50}, salt="another.salt")
        assert code_of(fetch(client, token=forged)) == 498
        tampered = token(client)[:-2] + "xx"
        assert code_of(fetch(client, token=tampered)) == 498


@pytest.mark.django_db
class TestLifetime:
    def test_expired_tokens_are_498(self, client, vault, monkeypatch):
        value = token(client, expiration="1")
        assert features(fetch(client, token=value)) == 2
        later = time.time() + 61
        monkeypatch.setattr(tokens.time, "time", lambda: later)
        assert code_of(fetch(client, token=value)) == 498

    def test_sign_out_revokes(self, client, vault, alice):
        value = token(client)
        client.force_login(alice)
        client.logout()
        assert code_of(fetch(client, token=value)) == 498
        assert features(fetch(client, token=token(client))) == 2  # a new one works

    def test_disabled_user(self, client, vault, alice):
        value = token(client)
        alice.is_active = False
        alice.save()
        assert code_of(fetch(client, token=value)) == 498

    def test_new_password(self, client, vault, alice):
        value = token(client)
        alice.set_password("another " + PASSWORD)
        alice.save()
        assert code_of(fetch(client, token=value)) == 498

    def test_deleted_user(self, client, vault, alice):
        value = token(client)
        alice.delete()
        assert code_of(fetch(client, token=value)) == 498


@pytest.mark.django_db
class TestBinding:
    def test_requestip(self, client, vault):
        value = token(client, client="requestip")
        assert features(fetch(client, token=value)) == 2
        assert code_of(fetch(client, token=value, REMOTE_ADDR="127.0.0.2")) == 498

    def test_ip(self, client, vault):
        value = token(client, client="ip", ip="127.0.0.9")
        assert code_of(fetch(client, token=value)) == 498
        assert features(fetch(client, token=value, REMOTE_ADDR="127.0.0.9")) == 2

    def test_referer_checks_the_origin(self, client, vault):
        value = token(client, client="referer", referer="http://127.0.0.1:8123/app/map.html")
        assert features(fetch(client, token=value,
                              HTTP_REFERER="http://127.0.0.1:8123/other/page")) == 2
        assert features(fetch(client, token=value, HTTP_ORIGIN="http://127.0.0.1:8123")) == 2
        assert code_of(fetch(client, token=value,
                             HTTP_REFERER="http://127.0.0.1:9999/app/map.html")) == 498
        assert code_of(fetch(client, token=value)) == 498  # no Referer at all

    def test_referer_given_as_a_host(self, client, vault):
        value = token(client, client="referer", referer="maps.example.org")
        assert features(fetch(client, token=value,
                              HTTP_REFERER="https://maps.example.org/viewer")) == 2
        assert code_of(fetch(client, token=value, HTTP_REFERER="https://evil.example")) == 498

    def test_https_tokens_are_refused_over_http(self, client, vault):
        body = orjson.loads(client.post("/rest/generateToken", {
            "username": "alice", "password": PASSWORD}, secure=True).content)
        assert body["ssl"] is True
        assert code_of(fetch(client, token=body["token"])) == 498
        response = client.get(BASE + "/0/query", {"token": body["token"]}, secure=True)
        assert "features" in orjson.loads(response.content)
