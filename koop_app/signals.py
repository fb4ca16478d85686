"""Signal wiring: provider rows follow the registry; settings changes reset cached state."""

from __future__ import annotations

from typing import Any

from django.core.signals import setting_changed
from django.db.models.signals import post_delete, post_migrate
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
    """A deleted dataset takes its cached copy and its id map with it."""
    from koop_app import data

    if instance.cache_key:
        data.forget(instance.cache_key)
