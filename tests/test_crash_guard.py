"""The test-side crash check itself: it sees what it must, and only that."""

from __future__ import annotations

import pytest

from tests.crash_guard import guarded, problems_of

JSON = "application/json"


@pytest.mark.parametrize(("path", "status", "content_type", "body", "problem"), [
    ("/health", 503, JSON, b"{}", "HTTP 503"),
    ("/x/rest/info", 200, JSON, b'{"error": {"code": 500, "message": "x"}}', "code"),
    ("/x/rest/info", 200, "application/javascript", b'cb({"error":{"code":500}});', "code"),
    ("/rest/info", 404, "text/html; charset=utf-8", b"<html>", "HTML"),
    ("/admin/", 200, "text/html", b"Traceback (most recent call last):", "traceback"),
])
def test_problems_are_seen(path, status, content_type, body, problem):
    assert problem in " ".join(problems_of(path, status, content_type, body))


@pytest.mark.parametrize(("path", "status", "content_type", "body"), [
    ("/x/rest/q", 200, JSON, b'{"features": [{"attributes": {"code": 500}}]}'),
    ("/x/rest/q", 200, JSON, b'{"error": {"code": 502, "message": "source"}}'),
    ("/admin/", 404, "text/html", b"<html>"),
    ("/health", 200, JSON, None),
])
def test_fine_answers_pass(path, status, content_type, body):
    assert problems_of(path, status, content_type, body) == []


def test_allowed_statuses_pass():
    assert problems_of("/health", 503, JSON, b"{}", frozenset({503})) == []


@pytest.mark.urls("tests.outputs.geoservices.crash_urls")
@pytest.mark.expected_server_error(500)  # for the test's own guard; the inner one must see it
def test_a_crash_through_the_client_is_caught(client):
    with guarded(frozenset()) as guard:
        client.get("/crash/rest/boom")
    assert any("code\": 500" in p or "code-500" in p or "500" in p for p in guard.problems)
    assert any(p.startswith("logged:") for p in guard.problems)

