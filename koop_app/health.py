"""``/health``: is each part the service needs reachable (database, data cache, broker)?

The answer also says what the answering process holds in memory (its hot tables), and whether
a Celery worker answers a ping. A missing worker stops refreshes, not queries: it shows as
``workers.ok: false`` and in ``warnings`` but leaves the status 200, so a load balancer keeps
sending queries to this process.
"""

from __future__ import annotations

import os
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse

from koop_app.workers import live_workers, queue_is_eager


def _check(probe: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = probe()
    except Exception as exc:  # any failure is the answer here, not an error of ours
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1),
            **({"detail": detail} if detail else {})}


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _cache() -> None:
    cache.set("koop:health", "1", timeout=10)
    if cache.get("koop:health") != "1":
        raise RuntimeError("the cache did not keep a value")


def _broker() -> str | None:
    if queue_is_eager():
        return "no broker: tasks run in the web process"
    from kombu import Connection

    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=2,
                    transport_options=options) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return None


def _workers() -> dict[str, Any]:
    if queue_is_eager():
        return {"ok": True, "detail": "no broker: refreshes run in the web process"}
    names = live_workers()
    if not names:
        return {"ok": False, "detail": "no Celery worker answered a ping"}
    return {"ok": True, "detail": "a worker answered"}  # not its name: /health is public


def _this_process() -> dict[str, Any]:
    """What this web process holds: its decoded tables against their memory budget."""
    from koop_app.conf import koop_settings
    from koop_app.data.hot import hot_tables

    return {"pid": os.getpid(), "hot_tables": hot_tables.usage(),
            "hot_tables_budget_bytes": int(koop_settings.HOT_TABLES_MAX_BYTES)}


def health(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check(_database), "cache": _check(_cache),
              "broker": _check(_broker)}
    ok = all(check["ok"] for check in checks.values())
    workers = _workers()
    warnings = [] if workers["ok"] else ["no Celery worker is running: refreshes wait"]
    return JsonResponse({"ok": ok, **checks, "workers": workers, "warnings": warnings,
                         "process": _this_process()}, status=200 if ok else 503)
