"""Signal wiring: provider rows follow the registry; settings changes reset cached state."""

from __future__ import annotations

from typing import Any

from django.core.signals import setting_changed
from django.db.models.signals import post_delete, post_migrate, post_save
from django.dispatch import receiver

from koop_app.registry import registry


@receiver(post_migrate)
def sync_providers(sender: Any, app_config: Any = None, **kwargs: Any) -> None:
    if app_config is not None and app_config.label == "koop_app":
        from koop_app.models import Provider

        Provider.sync_from_registry()


@receiver(setting_changed)
def reset_registry(setting: str, **kwargs: Any) -> None:
    if setting == "KOOP":
        registry.reset()


@receiver(post_delete, sender="koop_app.Dataset")
def forget_dataset(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A deleted dataset takes its cached copy, its id map and its schedule with it."""
    from koop_app import data, schedules

    if instance.cache_key:
        data.forget(instance.cache_key)
    schedules.remove_schedule(instance)


@receiver(post_save, sender="koop_app.Dataset")
def schedule_dataset(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """Keep the dataset's refresh schedule in step with its TTL and state."""
    if raw:
        return
    from koop_app import schedules

    schedules.sync_schedule(instance)


@receiver(post_save, sender="koop_app.Provider")
def schedule_provider(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """A provider's policy, TTL or state changes every one of its datasets' schedules."""
    if raw:
        return
    from koop_app import schedules

    for dataset in instance.datasets.select_related("provider"):
        schedules.sync_schedule(dataset)


def _follow_data_ttl(sender: Any, dataset: Any, ttl: float, **kwargs: Any) -> None:
    """A provider's own ``ttl`` sets the refresh interval when it differs from the dataset's."""
    from koop_app import schedules

    if ttl != dataset.effective_ttl:
        schedules.sync_schedule(dataset, ttl)


def connect_data_signals() -> None:
    from koop_app.data import refreshed

    refreshed.connect(_follow_data_ttl, dispatch_uid="koop_follow_data_ttl")
