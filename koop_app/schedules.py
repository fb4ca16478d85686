"""Each cached dataset's refresh schedule in django-celery-beat, kept in step with the dataset.

The schedule fires at 80% of the TTL, so a fresh copy is stored before the old one expires and
clients never wait for a refresh. Pass-through and disabled datasets have no active schedule.
"""

from __future__ import annotations

import orjson
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from koop_app.conf import koop_settings
from koop_app.models import Dataset

TASK = "koop_app.tasks.refresh_dataset"
REFRESH_SHARE_OF_TTL = 0.8


def task_name(dataset: Dataset) -> str:
    return f"koop: refresh dataset {dataset.pk}"


def refresh_interval(dataset: Dataset, ttl: float | None = None) -> int:
    ttl = dataset.effective_ttl if ttl is None else ttl
    return max(int(koop_settings.MIN_REFRESH_SECONDS), int(ttl * REFRESH_SHARE_OF_TTL))


def sync_schedule(dataset: Dataset, ttl: float | None = None) -> PeriodicTask | None:
    """Create, update or disable the dataset's periodic refresh; return it (None: none).

    ``ttl`` is the one the data itself asked for (a provider's ``ttl``), when it did.
    """
    cached = dataset.is_cached
    existing = PeriodicTask.objects.filter(name=task_name(dataset)).first()
    if not cached and existing is None:
        return None
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=refresh_interval(dataset, ttl), period=IntervalSchedule.SECONDS)
    task, _ = PeriodicTask.objects.update_or_create(
        name=task_name(dataset),
        defaults={
            "task": TASK,
            "interval": interval,
            "args": orjson.dumps([dataset.pk]).decode(),
            "enabled": cached and dataset.enabled and dataset.provider.enabled,
            "description": f"Refresh {dataset.route_label} before its TTL runs out.",
        },
    )
    return task


def remove_schedule(dataset: Dataset) -> None:
    PeriodicTask.objects.filter(name=task_name(dataset)).delete()
