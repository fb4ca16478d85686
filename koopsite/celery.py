"""The Celery application, configured from Django settings (CELERY_* keys)."""

from __future__ import annotations

import os
import sys
from logging.config import dictConfig
from typing import Any

from celery import Celery
from celery.signals import celeryd_after_setup, setup_logging, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "koopsite.settings")

app = Celery("koopsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def _use_django_logging(**kwargs: Any) -> None:
    """Workers and beat log like the web processes (settings.LOGGING), not Celery's own way."""
    from django.conf import settings

    dictConfig(settings.LOGGING)


@celeryd_after_setup.connect
def _banner_only_for_people(instance: Any, **kwargs: Any) -> None:
    """The worker's start-up banner is art for a terminal: keep it out of JSON log streams.

    Celery prints it to stdout when this signal returns. Beat prints its banner before any
    signal, so a JSON deployment passes ``celery --quiet beat`` (docker-compose.yml).
    """
    from django.conf import settings

    from koop_app.logs import writes_plain

    log_format = settings.LOGGING.get("handlers", {}).get("console", {}).get("log_format")
    if not writes_plain(log_format or "auto", sys.__stdout__):
        instance.quiet = True


@worker_process_init.connect
def _yield_to_web_processes(**kwargs: Any) -> None:
    """Refreshes are background work: on a shared machine, queries get the CPU first."""
    os.nice(int(os.environ.get("KOOP_WORKER_NICE", "10")))
