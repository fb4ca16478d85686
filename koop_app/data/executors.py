"""Where a background refresh runs: a Celery worker, or a thread of this process.

Chosen once from the settings (``workers.queue_is_eager``: no broker, so threads), chosen again
only when a test changes them. The task is sent by name: this module does not import
koop_app.tasks, which imports koop_app.data.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from celery import current_app
from django.core.signals import setting_changed
from django.db import connection
from django.dispatch import receiver

from koop_app.logs import log_event
from koop_app.models import Dataset
from koop_app.workers import queue_is_eager

logger = logging.getLogger(__name__)
TASK = "koop_app.tasks.refresh_dataset"


class Executor(Protocol):
    def submit(self, dataset: Dataset, trigger: str,
               run_here: Callable[[], None]) -> str: ...

    def wait(self, timeout: float) -> None: ...


class ThreadExecutor:
    """Runs the refresh in a daemon thread of this process, with its own DB connection."""

    name = "thread"

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []

    def submit(self, dataset: Dataset, trigger: str, run_here: Callable[[], None]) -> str:
        def run() -> None:
            try:
                run_here()
            finally:
                connection.close()  # this thread's own connection

        thread = threading.Thread(target=run, name=f"koop-refresh-{dataset.pk}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return self.name

    def wait(self, timeout: float) -> None:
        for thread in list(self._threads):
            thread.join(timeout)
        self._threads.clear()


class CeleryExecutor:
    """Queues the refresh for a worker; when the broker is down, runs it in a thread here."""

    name = "worker"

    def __init__(self, fallback: ThreadExecutor) -> None:
        self.fallback = fallback

    def submit(self, dataset: Dataset, trigger: str, run_here: Callable[[], None]) -> str:
        try:
            current_app.send_task(TASK, args=(dataset.pk,), kwargs={"trigger": trigger})
            return self.name
        except Exception:  # no broker: refresh here instead
            log_event(logger, logging.WARNING, "queue.unavailable", f"{dataset.route_label}: "
                      "task queue unavailable; refreshing in this process", exc_info=True,
                      dataset=dataset.route_label)
            return self.fallback.submit(dataset, trigger, run_here)

    def wait(self, timeout: float) -> None:
        self.fallback.wait(timeout)


_threads = ThreadExecutor()
_chosen: Executor | None = None


def executor() -> Executor:
    """The executor the settings call for (chosen on first use)."""
    global _chosen
    if _chosen is None:
        _chosen = _threads if queue_is_eager() else CeleryExecutor(_threads)
    return _chosen


@receiver(setting_changed)
def _choose_again(setting: str, **kwargs: object) -> None:
    global _chosen
    if setting.startswith("CELERY_"):
        _chosen = None
