"""The test-side crash check itself: it sees what it must, and only that."""

from __future__ import annotations

import pytest

from tests.crash_guard import asks_html, guarded, problems_of

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


HTML_PAGE = "text/html; charset=utf-8"


def test_html_under_rest_passes_only_when_asked():
    """The services directory's pages (f=html) are HTML under /rest/; nothing else may be."""
    assert problems_of("/rest/services", 200, HTML_PAGE, b"<html>", html_asked=True) == []
    assert "HTML" in " ".join(problems_of("/rest/services", 200, HTML_PAGE, b"<html>"))
    # a refusal is never a page, even when one was asked for
    assert "HTML" in " ".join(problems_of("/rest/services", 404, HTML_PAGE, b"<html>",
                                          html_asked=True))


def test_a_code_500_page_is_seen():
    body = b'<div class="error" data-error-code="500">An unexpected error occurred</div>'
    assert "code-500" in " ".join(problems_of("/x/rest/q", 200, HTML_PAGE, body,
                                              html_asked=True))
    assert problems_of("/x/rest/q", 200, HTML_PAGE, body, frozenset({500}), True) == []
    fine = b'<div class="error" data-error-code="400">x</div><td>500</td>'
    assert problems_of("/x/rest/q", 200, HTML_PAGE, fine, html_asked=True) == []


@pytest.mark.parametrize(("query", "asked"), [
    ({"f": "html"}, True), ({"f": " HTML "}, True), ({"f": "json"}, False), ({}, False),
])
def test_asks_html(rf, query, asked):
    assert asks_html(rf.get("/rest/services", query)) is asked


@pytest.mark.urls("tests.outputs.geoservices.crash_urls")
@pytest.mark.expected_server_error(500)  # for the test's own guard; the inner one must see it
def test_a_crash_through_the_client_is_caught(client):
    with guarded(frozenset()) as guard:
        client.get("/crash/rest/boom")
    assert any("code\": 500" in p or "code-500" in p or "500" in p for p in guard.problems)
    assert any(p.startswith("logged:") for p in guard.problems)



@pytest.mark.urls("tests.outputs.geoservices.crash_urls")
@pytest.mark.expected_server_error(500)
def test_a_crash_on_a_page_is_caught(client):
    with guarded(frozenset()) as guard:
        response = client.get("/crash/rest/boom", {"f": "html"})
    assert response["Content-Type"].startswith("text/html")
    assert any("code-500 error page" in p for p in guard.problems)
    assert not any("HTML under /rest/" in p for p in guard.problems)


@pytest.mark.django_db
def test_pages_asked_for_pass_through_the_client(client):
    with guarded(frozenset()) as guard:
        assert client.get("/rest/services", {"f": "html"}).status_code == 200
        assert client.get("/rest/info", {"f": "html"}).status_code == 200
    assert guard.problems == []
