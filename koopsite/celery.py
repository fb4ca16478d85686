"""The Celery application, configured from Django settings (CELERY_* keys)."""

from __future__ import annotations

import os
from logging.config import dictConfig
from typing import Any

from celery import Celery
from celery.signals import setup_logging, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "koopsite.settings")

app = Celery("koopsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def _use_django_logging(**kwargs: Any) -> None:
    """Workers and beat log like the web processes (settings.LOGGING), not Celery's own way."""
    from django.conf import settings

    dictConfig(settings.LOGGING)


@worker_process_init.connect
def _yield_to_web_processes(**kwargs: Any) -> None:
    """Refreshes are background work: on a shared machine, queries get the CPU first."""
    os.nice(int(os.environ.get("KOOP_WORKER_NICE", "10")))
