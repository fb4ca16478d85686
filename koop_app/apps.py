"""App config: imports the checks and connects the signals."""

from __future__ import annotations

from django.apps import AppConfig


class KoopAppConfig(AppConfig):
    name = "koop_app"
    verbose_name = "Koop geodata services"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from koop_app import checks, signals  # noqa: F401  (registration on import)
        from koop_app.auth import checks as auth_checks  # noqa: F401
        from koop_app.auth import signals as auth_signals  # noqa: F401

        signals.connect_data_signals()
        from koop_app import lookup

        lookup.connect_signals()
