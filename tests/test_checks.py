"""System checks of the app's own wiring."""

from __future__ import annotations

from koop_app.checks import ERROR_MIDDLEWARE, check_error_middleware


def test_error_middleware_must_come_first(settings):
    assert check_error_middleware() == []
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != ERROR_MIDDLEWARE]
    assert [m.id for m in check_error_middleware()] == ["koop_app.W010"]
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, ERROR_MIDDLEWARE]
    assert [m.id for m in check_error_middleware()] == ["koop_app.W010"]
