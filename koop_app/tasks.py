"""Celery tasks: refresh a dataset (by id), retried with backoff when the source fails."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from koop_app import data
from koop_app.errors import KoopError
from koop_app.models import Dataset

logger = logging.getLogger(__name__)
MAX_RETRIES = 5
MAX_BACKOFF_SECONDS = 3600


@shared_task(bind=True, max_retries=MAX_RETRIES, name="koop_app.tasks.refresh_dataset")
def refresh_dataset(self: Any, dataset_id: int) -> dict[str, Any]:
    """Fetch the dataset now and store the new copy; the last good copy stays on failure."""
    try:
        dataset = Dataset.objects.select_related("provider").get(pk=dataset_id)
    except Dataset.DoesNotExist:
        logger.info("refresh of dataset %s skipped: it no longer exists", dataset_id)
        return {"dataset": dataset_id, "skipped": "deleted"}
    if not dataset.enabled or not dataset.provider.enabled:
        return {"dataset": dataset_id, "skipped": "disabled"}
    try:
        layers = data.refresh(dataset, keep_hot=False)  # workers serve no queries
    except KoopError as exc:
        countdown = min(60 * 2**self.request.retries, MAX_BACKOFF_SECONDS)
        logger.warning("refresh of %s failed (%s); retry %d in %d s", dataset.route_label,
                       exc.log_message, self.request.retries + 1, countdown)
        raise self.retry(exc=exc, countdown=countdown) from exc
    return {"dataset": dataset_id, "version": layers.version, "features": layers.count}
