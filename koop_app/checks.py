"""System checks: provider plugins that fail to import or break the contract, bad settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from koop_app.conf import koop_settings
from koop_app.registry import registry


@checks.register()
def check_providers(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    try:
        problems = registry.problems()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), hint="Fix settings.KOOP.", id="koop_app.E003")]
    for problem in problems:
        if problem.import_failed:
            messages.append(
                checks.Error(
                    f"Provider plugin {problem.source} {problem.message}",
                    hint="Check the dotted path (module.Class) and that the package is installed.",
                    id="koop_app.E001",
                )
            )
        else:
            messages.append(
                checks.Error(
                    f"Provider plugin {problem.source} breaks the provider contract: "
                    f"{problem.message}",
                    hint="Subclass koop_app.provider.Provider, set a lowercase name and "
                    "implement get_data(request).",
                    id="koop_app.E002",
                )
            )
    data_dir = koop_settings.DATA_DIR
    if data_dir and not Path(data_dir).is_dir():
        messages.append(
            checks.Warning(
                f"KOOP['DATA_DIR'] {data_dir!r} is not a directory.",
                hint="Create it or point KOOP_DATA_DIR at the folder holding your data files.",
                id="koop_app.W001",
            )
        )
    return messages


ERROR_MIDDLEWARE = "koop_app.outputs.geoservices.middleware.GeoServicesErrorMiddleware"


@checks.register()
def check_error_middleware(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Without the middleware, /rest/ errors raised outside views come back as HTML pages."""
    from django.conf import settings

    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    if middleware[:1] == [ERROR_MIDDLEWARE]:
        return []
    return [checks.Warning(
        "GeoServicesErrorMiddleware is not the first entry of MIDDLEWARE.",
        hint=f"Put {ERROR_MIDDLEWARE!r} first: ArcGIS clients then get GeoServices JSON for "
             "body limits, unknown routes and failures outside views.",
        id="koop_app.W010")]
