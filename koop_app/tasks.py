"""Celery tasks: refresh a dataset (by id), retried with backoff when the source fails.

A refresh survives the death of its worker. The task is acknowledged only once it has run
(``acks_late``) and given back to the broker when its worker process dies
(``reject_on_worker_lost``), so a prefork pool runs it again at once. A solo worker (`make run`)
dies with its task: the message is gone on the filesystem broker and comes back from Redis
only after the visibility timeout. So each run writes its history row as "running" first; a
worker that starts marks the rows its node left running as "interrupted" and queues them again
under the same task id, and a task id that already finished well is not run twice. A refresh
interrupted MAX_INTERRUPTIONS times (one that kills its worker, say by running out of memory) is
not run again until its next schedule.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.signals import worker_ready

from koop_app import data
from koop_app.data import recorder
from koop_app.errors import KoopError
from koop_app.logs import log_event
from koop_app.models import Dataset, RefreshLog

logger = logging.getLogger(__name__)
MAX_RETRIES = 5
MAX_BACKOFF_SECONDS = 3600
MAX_INTERRUPTIONS = 3


@shared_task(bind=True, max_retries=MAX_RETRIES, name="koop_app.tasks.refresh_dataset",
             acks_late=True, reject_on_worker_lost=True)
def refresh_dataset(self: Any, dataset_id: int, trigger: str = "schedule") -> dict[str, Any]:
    """Fetch the dataset now and store the new copy; the last good copy stays on failure.

    Beat's schedule calls it with the id alone; the admin and an expired copy say why. A
    scheduled or stale-triggered refresh is skipped when another one has run since it was
    queued; the admin's always runs.
    """
    task_id = self.request.id or ""
    if task_id:
        if RefreshLog.objects.filter(task_id=task_id, state=RefreshLog.DONE, ok=True).exists():
            return {"dataset": dataset_id, "skipped": "done"}  # a second delivery of it
        mark_interrupted(RefreshLog.objects.filter(task_id=task_id, state=RefreshLog.RUNNING))
        if interrupted_too_often(task_id):
            return {"dataset": dataset_id, "skipped": "interrupted"}
    try:
        dataset = Dataset.objects.select_related("provider").get(pk=dataset_id)
    except Dataset.DoesNotExist:
        log_event(logger, logging.INFO, "refresh.skipped", f"refresh of dataset {dataset_id} "
                  "skipped: it no longer exists", dataset_id=dataset_id, reason="deleted")
        return {"dataset": dataset_id, "skipped": "deleted"}
    if not dataset.enabled or not dataset.provider.enabled:
        return {"dataset": dataset_id, "skipped": "disabled"}
    if trigger in ("schedule", "stale") and not data.needs_refresh(dataset):
        log_event(logger, logging.INFO, "refresh.skipped", f"{dataset.route_label}: refresh "
                  "skipped: the copy was refreshed since this one was queued",
                  dataset=dataset.route_label, dataset_id=dataset_id, reason="fresh",
                  trigger=trigger)
        return {"dataset": dataset_id, "skipped": "fresh"}
    history = recorder.open_row(dataset, trigger, task_id=task_id,
                                worker=self.request.hostname or "")
    try:
        # Workers serve no queries: store the copy without keeping it decoded here.
        layers = data.refresh(dataset, keep_hot=False, trigger=trigger, history_id=history.pk)
    except KoopError as exc:
        countdown = min(60 * 2**self.request.retries, MAX_BACKOFF_SECONDS)
        log_event(logger, logging.WARNING, "refresh.retry", f"{dataset.route_label}: retry "
                  f"{self.request.retries + 1} in {countdown} s", dataset=dataset.route_label,
                  dataset_id=dataset_id, attempt=self.request.retries + 1,
                  countdown_s=countdown, retries_left=MAX_RETRIES - self.request.retries)
        raise self.retry(exc=exc, countdown=countdown) from exc
    except BaseException as exc:  # a bug, or the worker stopping: the row must not stay running
        RefreshLog.objects.filter(pk=history.pk, state=RefreshLog.RUNNING).update(
            state=RefreshLog.DONE, error=f"{type(exc).__name__} (see the worker's log)")
        raise
    return {"dataset": dataset_id, "version": layers.version, "features": layers.count}


def mark_interrupted(rows: Any) -> int:
    """Close history rows whose worker died during the refresh."""
    return int(rows.update(state=RefreshLog.INTERRUPTED, ok=False,
                           error="interrupted: the worker stopped during the refresh"))


@worker_ready.connect
def requeue_interrupted_refreshes(sender: Any = None, **kwargs: Any) -> None:
    """Queue again the refreshes this worker node was running when it died."""
    node = getattr(sender, "hostname", "")
    if not node:
        return
    left = list(RefreshLog.objects.filter(state=RefreshLog.RUNNING, worker=node).values_list(
        "pk", "dataset_id", "trigger", "task_id"))
    for pk, dataset_id, trigger, task_id in left:
        mark_interrupted(RefreshLog.objects.filter(pk=pk))
        if task_id and interrupted_too_often(task_id):
            continue
        log_event(logger, logging.WARNING, "refresh.interrupted", f"refresh of dataset "
                  f"{dataset_id} was interrupted by the death of its worker; queued again",
                  dataset_id=dataset_id, task_id=task_id, worker=node, trigger=trigger)
        refresh_dataset.apply_async((dataset_id,), {"trigger": trigger},
                                    task_id=task_id or None)


def interrupted_too_often(task_id: str) -> bool:
    """A refresh that keeps killing its worker is given up (logged), not queued forever."""
    count = RefreshLog.objects.filter(task_id=task_id, state=RefreshLog.INTERRUPTED).count()
    if count < MAX_INTERRUPTIONS:
        return False
    log_event(logger, logging.ERROR, "refresh.abandoned", f"refresh task {task_id} was "
              f"interrupted {count} times; not run again", task_id=task_id, interruptions=count)
    return True
