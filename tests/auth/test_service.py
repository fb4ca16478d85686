"""generateToken and authInfo, answered as ArcGIS Server answers them."""

from __future__ import annotations

import time

import orjson
import pytest
from django.test import override_settings

from tests.auth.conftest import PASSWORD, token_for

REFUSED = {"error": {"code": 400, "message": "Unable to generate token.",
                     "details": ["Invalid username or password."]}}


def koop(settings, **values):
    return override_settings(KOOP={**settings.KOOP, **values})


def info(client, path: str = "/rest/info") -> dict:
    return orjson.loads(client.get(path, {"f": "json"}).content)


@pytest.mark.django_db
class TestAuthInfo:
    def test_root_and_every_provider_point_at_their_token_service(self, client):
        assert info(client)["authInfo"] == {
            "isTokenBasedSecurity": True, "shortLivedTokenValidity": 60,
            "tokenServicesUrl": "http://testserver/rest/generateToken"}
        # ArcGIS clients look for <server root>/rest/info, the root of
        # /geojson/rest/services/... being /geojson.
        assert info(client, "/geojson/rest/info")["authInfo"]["tokenServicesUrl"] == (
            "http://testserver/geojson/rest/generateToken")

    def test_off_by_setting(self, client, settings):
        with koop(settings, TOKEN_SECURITY=False):
            assert info(client)["authInfo"] == {"isTokenBasedSecurity": False}
            body = token_for(client)
            assert body["error"]["code"] == 404


@pytest.mark.django_db
class TestGenerateToken:
    def test_a_django_user_gets_a_token(self, client, alice):
        before = time.time() * 1000
        body = token_for(client, expiration="30")
        assert set(body) == {"token", "expires", "ssl"}
        assert body["ssl"] is False
        assert before + 29.9 * 60_000 < body["expires"] <= time.time() * 1000 + 30 * 60_000

    def test_each_provider_namespace_issues_the_same_kind_of_token(self, client, alice):
        assert "token" in token_for(client, path="/csv/rest/generateToken")

    def test_default_and_capped_expiration(self, client, alice, settings):
        now = time.time() * 1000
        assert token_for(client)["expires"] == pytest.approx(now + 60 * 60_000, abs=5_000)
        with koop(settings, TOKEN_MAX_MINUTES=120):
            capped = token_for(client, expiration="100000")["expires"]
        assert capped == pytest.approx(now + 120 * 60_000, abs=5_000)

    @pytest.mark.parametrize("expiration", ["-5", "0", "1.5", "ten", "²", "١٢", "9" * 40])
    def test_bad_expiration(self, client, alice, expiration):
        error = token_for(client, expiration=expiration)["error"]
        assert error["code"] == 400
        assert error["details"] == ["'expiration' must be a whole number of minutes."]

    @pytest.mark.parametrize(("username", "password"), [
        ("alice", "wrong"), ("nobody", PASSWORD), ("ALICE", PASSWORD), ("alice", "x" * 5000)])
    def test_bad_credentials_never_say_which_part(self, client, alice, username, password):
        assert token_for(client, username=username, password=password) == REFUSED

    def test_missing_credentials(self, client, db):
        error = token_for(client, username="", password="")["error"]
        assert (error["code"], error["message"]) == (400, "Unable to generate token.")

    def test_inactive_users_are_refused(self, client, alice):
        alice.is_active = False
        alice.save()
        assert token_for(client) == REFUSED

    def test_get_is_refused_unless_enabled(self, client, alice, settings):
        params = {"username": "alice", "password": PASSWORD, "f": "json"}
        body = orjson.loads(client.get("/rest/generateToken", params).content)
        assert body["error"]["code"] == 400
        assert "token" not in body
        with koop(settings, TOKEN_ALLOW_GET=True):
            body = orjson.loads(client.get("/rest/generateToken", params).content)
        assert "token" in body

    def test_post_reads_credentials_from_the_body_only(self, client, alice):
        url = f"/rest/generateToken?username=alice&password={PASSWORD}"
        body = orjson.loads(client.post(url, {"f": "json"}).content)
        assert body["error"]["code"] == 400

    @pytest.mark.parametrize(("params", "detail"), [
        ({"client": "ip"}, "'ip' must be an IP address when client is 'ip'."),
        ({"client": "ip", "ip": "not-an-ip"}, "'ip' must be an IP address when client is 'ip'."),
        ({"client": "referer"}, "'referer' must be given when client is 'referer'."),
        ({"client": "browser"}, "'client' must be referer, ip or requestip."),
    ])
    def test_bad_client(self, client, alice, params, detail):
        assert token_for(client, **params)["error"]["details"] == [detail]

    def test_https_only(self, client, alice, settings):
        with koop(settings, TOKEN_HTTPS_ONLY=True):
            assert token_for(client)["error"]["details"] == ["Tokens are only issued over HTTPS."]
            body = orjson.loads(client.post("/rest/generateToken", {
                "username": "alice", "password": PASSWORD}, secure=True).content)
        assert body["ssl"] is True

    def test_answers_are_not_cached(self, client, alice):
        response = client.post("/rest/generateToken", {"username": "alice",
                                                       "password": PASSWORD})
        assert response["Cache-Control"] == "no-store"

    def test_pjson_and_jsonp(self, client, alice):
        response = client.post("/rest/generateToken?f=pjson&callback=cb",
                               {"username": "alice", "password": PASSWORD})
        assert response.content.startswith(b"cb(")


class TestThrottledSignIns:
    """generateToken counts failures with the admin's login throttle (django-axes)."""

    def test_a_locked_out_pair_gets_a_geoservices_error_not_a_token(self, db, alice, settings):
        from django.test import Client

        client = Client(REMOTE_ADDR="127.0.0.9")
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            body = token_for(client, password="wrong")
            assert body["error"]["code"] == 400
        assert token_for(client, password="wrong")["error"]["code"] == 429  # locked now
        locked = token_for(client)  # the right password, still locked out
        assert locked["error"]["code"] == 429
        assert "token" not in locked
        # Another address (or the admin of another address) is not affected.
        assert "token" in token_for(Client(REMOTE_ADDR="127.0.0.10"))
