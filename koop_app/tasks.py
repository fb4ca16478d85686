"""Celery tasks: refresh a dataset (by id), retried with backoff when the source fails."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from koop_app import data
from koop_app.errors import KoopError
from koop_app.logs import log_event
from koop_app.models import Dataset

logger = logging.getLogger(__name__)
MAX_RETRIES = 5
MAX_BACKOFF_SECONDS = 3600


@shared_task(bind=True, max_retries=MAX_RETRIES, name="koop_app.tasks.refresh_dataset")
def refresh_dataset(self: Any, dataset_id: int, trigger: str = "schedule") -> dict[str, Any]:
    """Fetch the dataset now and store the new copy; the last good copy stays on failure.

    Beat's schedule calls it with the id alone; the admin and an expired copy say why. A
    scheduled or stale-triggered refresh is skipped when another one has run since it was
    queued; the admin's always runs.
    """
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
    try:
        # Workers serve no queries: store the copy without keeping it decoded here.
        layers = data.refresh(dataset, keep_hot=False, trigger=trigger)
    except KoopError as exc:
        countdown = min(60 * 2**self.request.retries, MAX_BACKOFF_SECONDS)
        log_event(logger, logging.WARNING, "refresh.retry", f"{dataset.route_label}: retry "
                  f"{self.request.retries + 1} in {countdown} s", dataset=dataset.route_label,
                  dataset_id=dataset_id, attempt=self.request.retries + 1,
                  countdown_s=countdown, retries_left=MAX_RETRIES - self.request.retries)
        raise self.retry(exc=exc, countdown=countdown) from exc
    return {"dataset": dataset_id, "version": layers.version, "features": layers.count}
