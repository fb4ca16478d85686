"""The Django project that hosts koop_app; the Celery app is loaded with it."""

from __future__ import annotations

from koopsite.celery import app as celery_app

__all__ = ["celery_app"]
