"""System checks: provider plugins that fail to import or break the contract, bad settings."""

from __future__ import annotations

import os
from ipaddress import ip_network
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


@checks.register()
def check_fetch_policy(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """KOOP['ALLOWED_SOURCE_NETWORKS'] must hold CIDRs; a wide one is worth a warning."""
    messages: list[checks.CheckMessage] = []
    for entry in koop_settings.ALLOWED_SOURCE_NETWORKS or ():
        try:
            network = ip_network(str(entry).strip(), strict=False)
        except ValueError:
            messages.append(checks.Error(
                f"KOOP['ALLOWED_SOURCE_NETWORKS'] holds {entry!r}, which is not a network.",
                hint="Use CIDR notation, e.g. '10.1.0.0/16' or 'fd00:1::/64'.",
                id="koop_app.E040"))
            continue
        if network.prefixlen < (8 if network.version == 4 else 16):
            messages.append(checks.Warning(
                f"KOOP['ALLOWED_SOURCE_NETWORKS'] allows {network}, a very wide network: "
                "sources there can reach internal services.",
                hint="List only the networks that hold your data sources.", id="koop_app.W040"))
    return messages


@checks.register()
def check_cost_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """KOOP['RATE_LIMIT'] and 'TRUSTED_PROXIES' readable; limits positive numbers."""
    from koop_app.forwarded import trusted_proxies
    from koop_app.ratelimit import parse_rate

    messages: list[checks.CheckMessage] = []
    try:
        if koop_settings.RATE_LIMIT:
            parse_rate(koop_settings.RATE_LIMIT)
        trusted_proxies()
    except ImproperlyConfigured as exc:
        messages.append(checks.Error(str(exc), hint="e.g. KOOP['RATE_LIMIT'] = '600/minute', "
                                     "KOOP['TRUSTED_PROXIES'] = ['10.0.0.0/8']",
                                     id="koop_app.E051"))
    for name in ("MAX_WHERE_LENGTH", "MAX_WHERE_NODES", "MAX_WHERE_DEPTH",
                 "MAX_WHERE_COMPUTATIONS", "MAX_IN_LIST", "MAX_OBJECT_IDS",
                 "MAX_GEOMETRY_VERTICES", "MAX_GEOMETRY_PARTS", "MAX_STATISTICS",
                 "MAX_GROUP_BY_FIELDS", "MAX_ORDER_BY_FIELDS", "MAX_OUT_FIELDS"):
        value = getattr(koop_settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            messages.append(checks.Error(f"KOOP[{name!r}] must be a positive integer, "
                                         f"not {value!r}.", id="koop_app.E052"))
    timeout = koop_settings.QUERY_TIMEOUT_SECONDS
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(
            timeout, (int, float)) or timeout <= 0):
        messages.append(checks.Error(f"KOOP['QUERY_TIMEOUT_SECONDS'] must be a positive number "
                                     f"or None, not {timeout!r}.", id="koop_app.E053"))
    return messages


ERROR_MIDDLEWARE = "koop_app.outputs.geoservices.middleware.GeoServicesErrorMiddleware"
CORS_MIDDLEWARE = "corsheaders.middleware.CorsMiddleware"


@checks.register()
def check_error_middleware(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Without the middleware, /rest/ errors raised outside views come back as HTML pages."""
    from django.conf import settings

    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    if middleware and middleware[0] == CORS_MIDDLEWARE:
        middleware = middleware[1:]  # only CORS may wrap it: its headers go on every answer
    if middleware[:1] == [ERROR_MIDDLEWARE]:
        return []
    return [checks.Warning(
        "GeoServicesErrorMiddleware is not the first entry of MIDDLEWARE.",
        hint=f"Put {ERROR_MIDDLEWARE!r} first (after {CORS_MIDDLEWARE!r} only): ArcGIS clients "
             "then get GeoServices JSON for body limits, unknown routes and failures outside "
             "views.",
        id="koop_app.W010")]


@checks.register()
def check_hot_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """KOOP['HOT_ORDER'] known; KOOP['HOT_DIR'] writable; DuckDB threads a positive integer."""
    from koop_app.data import hotfiles

    messages: list[checks.CheckMessage] = []
    if koop_settings.HOT_ORDER not in (None, "cells", "hilbert"):
        messages.append(checks.Error(f"KOOP['HOT_ORDER'] must be None, 'cells' or 'hilbert', not "
                                     f"{koop_settings.HOT_ORDER!r}.", id="koop_app.E060"))
    threads = koop_settings.DUCKDB_THREADS
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        messages.append(checks.Error(f"KOOP['DUCKDB_THREADS'] must be a positive integer or "
                                     f"None, not {threads!r}.", id="koop_app.E061"))
    folder = hotfiles.folder()
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            writable = os.access(folder, os.W_OK)
        except OSError:
            writable = False
        if not writable:
            messages.append(checks.Warning(
                f"KOOP['HOT_DIR'] {str(folder)!r} is not a writable folder: layers cannot be "
                "shared between processes and loading them will fail.",
                hint="Point KOOP['HOT_DIR'] at a local folder the web processes can write, or "
                     "set it to False for in-memory tables in each process.",
                id="koop_app.W060"))
    return messages


# Cache backends that keep entries in one process (or nowhere): a worker's refresh stays there.
PROCESS_LOCAL_CACHES = ("django.core.cache.backends.locmem.LocMemCache",
                        "django.core.cache.backends.dummy.DummyCache")


@checks.register()
def check_host_project(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """What koop_app needs from the project that installs it: django-celery-beat's tables, and
    a cache shared with the Celery workers when refreshes are queued to them."""
    from django.apps import apps
    from django.conf import settings

    from koop_app.workers import queue_is_eager

    messages: list[checks.CheckMessage] = []
    if not apps.is_installed("django_celery_beat"):
        messages.append(checks.Error(
            "koop_app keeps each dataset's refresh schedule in django-celery-beat, which is not "
            "in INSTALLED_APPS.",
            hint="Add 'django_celery_beat' to INSTALLED_APPS and run manage.py migrate (no "
                 "Celery is needed to run: without a broker, refreshes run in the web process).",
            id="koop_app.E070"))
    backend = (getattr(settings, "CACHES", {}) or {}).get("default", {}).get("BACKEND", "")
    if backend in PROCESS_LOCAL_CACHES and not queue_is_eager():
        messages.append(checks.Warning(
            f"Refreshes are queued to Celery workers, but the default cache ({backend}) is not "
            "shared with them: the data they fetch never reaches the web processes.",
            hint="Use a shared cache for CACHES['default']: django-redis, or "
                 "'koop_app.filecache.FileCache' on one host.",
            id="koop_app.W070"))
    return messages
