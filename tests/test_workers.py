"""Whether refreshes are queued to Celery, in projects that configure Celery or not."""

from __future__ import annotations

from koop_app.workers import queue_is_eager


def test_a_project_without_celery_settings_refreshes_in_process(settings):
    del settings.CELERY_TASK_ALWAYS_EAGER
    del settings.CELERY_BROKER_URL
    assert queue_is_eager() is True
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"  # the project's Celery broker
    assert queue_is_eager() is False
    settings.CELERY_TASK_ALWAYS_EAGER = True  # stated, it decides
    assert queue_is_eager() is True
