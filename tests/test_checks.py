"""System checks of the app's own wiring."""

from __future__ import annotations

from koop_app.checks import CORS_MIDDLEWARE, ERROR_MIDDLEWARE, check_error_middleware


def test_error_middleware_must_come_first(settings):
    assert check_error_middleware() == []
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != ERROR_MIDDLEWARE]
    assert [m.id for m in check_error_middleware()] == ["koop_app.W010"]
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, ERROR_MIDDLEWARE]
    assert [m.id for m in check_error_middleware()] == ["koop_app.W010"]
    # Only django-cors-headers may wrap it (its headers then go on every answer).
    settings.MIDDLEWARE = [ERROR_MIDDLEWARE, *settings.MIDDLEWARE[:-1]]
    assert check_error_middleware() == []
    settings.MIDDLEWARE = [CORS_MIDDLEWARE, *settings.MIDDLEWARE]
    assert check_error_middleware() == []


def test_hot_settings_are_checked(settings, tmp_path):
    from koop_app.checks import check_hot_settings

    settings.KOOP = {**settings.KOOP, "HOT_DIR": str(tmp_path / "hot")}
    assert check_hot_settings() == []
    blocker = tmp_path / "file"
    blocker.write_text("")
    settings.KOOP = {**settings.KOOP, "HOT_ORDER": "zorder", "DUCKDB_THREADS": 0,
                     "HOT_DIR": str(blocker / "hot")}
    assert [m.id for m in check_hot_settings()] == ["koop_app.E060", "koop_app.E061",
                                                    "koop_app.W060"]


def test_host_project_needs_celery_beat_and_a_shared_cache(settings):
    """What a project installing the app must give it (README, "Use it in your own ...")."""
    from django.test.utils import modify_settings

    from koop_app.checks import check_host_project

    assert check_host_project() == []
    with modify_settings(INSTALLED_APPS={"remove": ["django_celery_beat"]}):
        assert [m.id for m in check_host_project()] == ["koop_app.E070"]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert check_host_project() == []  # refreshes run in this process: its memory is enough
    settings.CELERY_TASK_ALWAYS_EAGER = False
    assert [m.id for m in check_host_project()] == ["koop_app.W070"]
