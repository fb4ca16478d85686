"""Celery beat's scheduler in the compose stack: django-celery-beat's, with a heartbeat file.

Beat has no port to probe and answers no ping; each tick touches a file instead, and the
container's healthcheck (``deploy/healthcheck.py beat``) reads its age. A beat stuck on the
database stops ticking and turns unhealthy.

    celery -A koopsite beat --scheduler koopsite.beat:HeartbeatScheduler
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from django_celery_beat.schedulers import DatabaseScheduler


def heartbeat_path() -> Path:
    """Where the heartbeat goes; the same rule as deploy/healthcheck.py's reader."""
    return Path(os.environ.get("KOOP_BEAT_HEARTBEAT")
                or Path(tempfile.gettempdir()) / "koop-beat-heartbeat")


class HeartbeatScheduler(DatabaseScheduler):
    """``DatabaseScheduler`` that touches ``heartbeat_path()`` after each successful tick."""

    def tick(self, *args: Any, **kwargs: Any) -> float:
        delay = super().tick(*args, **kwargs)
        heartbeat_path().touch()
        return delay
