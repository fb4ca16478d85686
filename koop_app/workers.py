"""Is a Celery worker there to run queued refreshes? A ping, its answer kept a few seconds."""

from __future__ import annotations

import threading
import time

from django.conf import settings

PING_TIMEOUT_SECONDS = 1.0
# A live worker is taken as alive for a while; a missing one is asked again sooner.
KEEP_ALIVE_SECONDS = 15.0
KEEP_MISSING_SECONDS = 3.0

_lock = threading.Lock()
_answer: tuple[float, list[str]] | None = None


def queue_is_eager() -> bool:
    """No broker: tasks run in the calling process, and no worker is needed.

    CELERY_TASK_ALWAYS_EAGER decides when the project sets it. A project that sets neither it
    nor CELERY_BROKER_URL has no Celery set up for us: refreshes then run in this process.
    """
    eager = getattr(settings, "CELERY_TASK_ALWAYS_EAGER", None)
    if eager is None:
        return not getattr(settings, "CELERY_BROKER_URL", None)
    return bool(eager)


def live_workers() -> list[str]:
    """The node names of the workers that answered a ping (one is enough to stop waiting)."""
    global _answer
    with _lock:
        now = time.monotonic()
        if _answer is not None and now < _answer[0]:
            return _answer[1]
        # The project's Celery app (any project: it is the current one once created).
        from celery import current_app as app

        try:
            with app.connection_for_write() as conn:
                # Fail fast when the broker is down, instead of kombu's retries (seconds).
                conn.ensure_connection(max_retries=1, timeout=PING_TIMEOUT_SECONDS)
                replies = app.control.ping(timeout=PING_TIMEOUT_SECONDS, limit=1,
                                           connection=conn)
        except Exception:  # the broker is down: no worker can be reached either
            replies = []
        names = sorted(name for reply in replies or [] for name in reply)
        keep = KEEP_ALIVE_SECONDS if names else KEEP_MISSING_SECONDS
        _answer = (time.monotonic() + keep, names)
        return names


def forget() -> None:
    """Ask again on the next call (tests, a changed broker)."""
    global _answer
    with _lock:
        _answer = None
