"""``koop_app.net.request``: other methods, bodies, and the statuses a caller reads itself."""

from __future__ import annotations

import pytest

from koop_app.errors import (
    SourceAuthError,
    SourceError,
    SourceNotFoundError,
    SourceRateLimitedError,
)
from koop_app.net import request


@pytest.fixture(autouse=True)
def _loopback_allowed(allow) -> None:
    allow("127.0.0.1/32")


def test_a_post_sends_its_body_and_headers(source_server):
    url = source_server.route("/idx/_search", body=b'{"hits": []}')
    answer = request("POST", url, body=b'{"query": {"match_all": {}}}',
                     headers={"Content-Type": "application/json"})
    assert answer.status == 200 and answer.body == b'{"hits": []}'
    sent = source_server.requests[-1]
    assert sent["method"] == "POST" and sent["body"] == b'{"query": {"match_all": {}}}'
    assert sent["content-type"] == "application/json"


def test_accepted_statuses_are_answers_with_their_body(source_server):
    url = source_server.route("/bad", status=400, body=b'{"error": {"type": "parsing"}}')
    answer = request("POST", url, body=b"{}", accept={400})
    assert answer.status == 400 and b"parsing" in answer.body
    not_modified = source_server.route("/same", status=304, headers={"ETag": '"v1"'})
    answer = request("GET", not_modified, headers={"If-None-Match": '"v1"'}, accept={304})
    assert answer.status == 304 and answer.headers["etag"] == '"v1"'


@pytest.mark.parametrize(("status", "error"), [
    (401, SourceAuthError), (403, SourceAuthError), (404, SourceNotFoundError),
    (429, SourceRateLimitedError), (500, SourceError)])
def test_other_statuses_are_errors_without_the_url(source_server, status, error):
    url = source_server.route("/secret-path", status=status, headers={"Retry-After": "17"})
    with pytest.raises(error) as caught:
        request("GET", url)
    assert "secret-path" not in caught.value.message and "secret-path" in caught.value.log_message
    if status == 429:
        assert caught.value.status == 503 and "Retry after 17 seconds" in caught.value.message
    if status in (401, 403):
        assert caught.value.status == 502 and "credentials" in caught.value.message


def test_a_post_follows_only_redirects_that_keep_its_body(source_server):
    target = source_server.route("/new", body=b"moved here")
    source_server.route("/keep", status=307, headers={"Location": target})
    assert request("POST", source_server.url("/keep"), body=b"x").body == b"moved here"
    assert source_server.requests[-1]["method"] == "POST"
    assert source_server.requests[-1]["body"] == b"x"
    source_server.route("/see-other", status=303, headers={"Location": target})
    with pytest.raises(SourceError):  # 303 is not followed with a body, and not accepted
        request("POST", source_server.url("/see-other"), body=b"x")
    answer = request("POST", source_server.url("/see-other"), body=b"x", accept={303})
    assert answer.status == 303


def test_a_bad_method_is_refused_before_connecting(source_server):
    before = len(source_server.requests)
    with pytest.raises(ValueError):
        request("GET /x HTTP/1.1\r\n", source_server.url("/x"))
    assert len(source_server.requests) == before
