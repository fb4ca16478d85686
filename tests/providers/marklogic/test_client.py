"""The REST client: Digest (RFC 7616) and Basic authentication, MarkLogic's error bodies."""

from __future__ import annotations

import logging
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from koop_app.errors import (
    ProviderError,
    SourceAuthError,
    SourceConnectError,
    SourceError,
    SourceFormatError,
    SourceNotFoundError,
    SourceTimeoutError,
)
from providers.marklogic.client import Client, Server, digest_authorization, parse_challenge
from tests.providers.marklogic.conftest import PASSWORD

PLAN = b'{"$optic": {"ns": "op", "fn": "operators", "args": [{"ns": "op", "fn": "from-view", ' \
       b'"args": ["main", "wells", null, null]}, {"ns": "op", "fn": "offset-limit", ' \
       b'"args": [0, 2]}]}}'


def rows(client: Client) -> list:
    return client.call("POST", "/v1/rows", [("column-types", "header")], PLAN)["rows"]


# RFC 7616 section 3.9.1: the worked example, with MD5 and with SHA-256.
RFC_CHALLENGE = ('Digest realm="http-auth@example.org", qop="auth, auth-int", '
                 'algorithm={}, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
                 'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"')


@pytest.mark.parametrize(("algorithm", "response"), [
    ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
])
def test_digest_answer_matches_the_rfc_example(algorithm, response):
    challenge = parse_challenge(RFC_CHALLENGE.format(algorithm))
    assert challenge is not None and challenge.qop == "auth"
    header = digest_authorization(challenge, "GET", "/dir/index.html", "Mufasa",
                                  "Circle of Life",
                                  cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")
    assert f'response="{response}"' in header
    assert "nc=00000001" in header and f"algorithm={algorithm}" in header
    assert 'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"' in header
    assert "Circle of Life" not in header


@pytest.mark.parametrize("header", [
    'Basic realm="x"', 'Digest realm="x", nonce="n", algorithm=SHA-512-256',
    'Digest realm="x", nonce="n", qop="auth-int"', 'Digest realm="x"',
])
def test_challenges_we_cannot_answer(header):
    assert parse_challenge(header) is None


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_digest_challenge_is_answered_once_then_reused(marklogic, fake, algorithm):
    fake.algorithm = algorithm
    client = Client(Server(marklogic.url, "reader", PASSWORD))
    for _ in range(3):
        assert len(rows(client)) == 2
    assert fake.challenges == 1  # one 401, then nonce counts 2, 3 on the same nonce
    sent = [h.get("authorization", "") for h in marklogic.seen_headers]
    assert sent[0] == "" and all(h.startswith("Digest ") for h in sent[1:])
    assert all(PASSWORD not in h for h in sent)


def test_a_stale_nonce_is_renewed(marklogic, fake):
    client = Client(Server(marklogic.url, "reader", PASSWORD))
    rows(client)
    fake.expire_nonces()
    assert len(rows(client)) == 2
    assert fake.challenges == 2


def test_concurrent_requests_share_one_challenge(marklogic, fake):
    """Requests racing on one nonce reach the server out of count order: a refused kept nonce
    is renewed, never taken for wrong credentials."""
    client = Client(Server(marklogic.url, "reader", PASSWORD))
    rows(client)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: len(rows(client)), range(40)))
    assert answers == [2] * 40


def test_wrong_password_is_a_clear_auth_error_without_the_password(marklogic, fake, caplog):
    client = Client(Server(marklogic.url, "reader", "wrong-horse-battery"))
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceAuthError) as info:
        rows(client)
    assert "refused the connection's credentials" in info.value.message
    assert "wrong-horse-battery" not in info.value.log_message + info.value.message
    assert "wrong-horse-battery" not in caplog.text


def test_basic_auth(marklogic, fake):
    fake.auth = "basic"
    assert len(rows(Client(Server(marklogic.url, "reader", PASSWORD, "basic")))) == 2
    with pytest.raises(SourceAuthError):
        rows(Client(Server(marklogic.url, "reader", "nope", "basic")))
    with pytest.raises(SourceAuthError) as info:  # digest configured, basic asked for
        rows(Client(Server(marklogic.url, "reader", PASSWORD, "digest")))
    assert "scheme" in info.value.message


def test_error_bodies_become_clear_errors(marklogic, fake):
    client = Client(Server(marklogic.url, "reader", PASSWORD))
    with pytest.raises(SourceNotFoundError) as info:
        client.call("POST", "/v1/rows", (), PLAN.replace(b'"wells"', b'"nope"'))
    assert "SQL-TABLENOTFOUND" in info.value.message and "main.nope" in info.value.message
    assert info.value.status == 404
    with pytest.raises(SourceError) as info:
        client.call("POST", "/v1/search", [("format", "json")], b'{"search": {"query": '
                    b'{"queries": [{"range-query": {"json-property": "wells", "type": "xs:int",'
                    b' "range-operator": "GT", "value": [1]}}]}, "options": {'
                    b'"transform-results": {"apply": "raw"}}}}')
    assert "XDMP-RANGEINDEX" in info.value.message and "range index" in info.value.message
    assert marklogic.url not in info.value.message
    fake.broken = True
    with pytest.raises(SourceFormatError):
        rows(client)


def test_database_parameter(marklogic, fake):
    rows(Client(Server(marklogic.url, "reader", PASSWORD, database="Wells")))
    assert ("database", "Wells") in fake.calls[-1]["params"]


def test_unreachable_and_slow_servers(marklogic, fake):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SourceConnectError):
        rows(Client(Server(f"http://127.0.0.1:{port}", "reader", PASSWORD)))
    client = Client(Server(marklogic.url, "reader", PASSWORD))
    rows(client)  # the Digest challenge is known: the next request is answered at once
    fake.body_delay = 3.0
    with pytest.raises(SourceTimeoutError):
        rows(client)
    fake.body_delay, fake.delay = 0.0, 3.0
    with pytest.raises(SourceConnectError):  # no head in time: koop_app.net says so
        rows(client)


@pytest.mark.parametrize("settings_", [{}, {"url": "ftp://x"}, {"url": "http://x", "auth": "ntlm"}])
def test_bad_connection_settings(settings_):
    with pytest.raises(ProviderError):
        Server.of(settings_)
