"""``/health``: is each part the service needs reachable (database, data cache, broker)?

The answer also says what the answering process holds in memory (its hot tables), and whether
a Celery worker answers a ping. ``status`` is "down" (HTTP 503) when a part is unreachable, and
"degraded" (HTTP 200, with ``reasons``) when queries still work but something needs a look: the
database stays locked for writes, no worker answers (refreshes wait), or a refresh is stuck
(no progress for KOOP["REFRESH_STUCK_SECONDS"]). A load balancer keeps sending queries then.
"""

from __future__ import annotations

import os
import sqlite3
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


# How long a write may wait for the database's write lock before /health calls it locked.
WRITE_PROBE_SECONDS = 2.0


def _database_writable() -> str | None:
    """Why the database is not taking writes, or None (SQLite: its write lock is free)."""
    settings_dict = connection.settings_dict
    if not settings_dict["ENGINE"].endswith("sqlite3"):
        return None  # PostgreSQL: no database-wide write lock
    if connection.in_atomic_block:
        return None  # this thread holds a transaction (tests): the probe would wait for it
    name = str(settings_dict["NAME"])
    if connection.creation.is_in_memory_db(name):
        return None  # one process's own database: nobody else writes to it
    try:
        probe = sqlite3.connect(name, timeout=WRITE_PROBE_SECONDS, isolation_level=None)
    except sqlite3.Error as exc:
        return f"the database cannot be opened ({type(exc).__name__})"
    try:
        probe.execute("BEGIN IMMEDIATE")  # takes the write lock, writes nothing
        probe.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        return f"the database stayed locked for writes for {WRITE_PROBE_SECONDS:.0f} s ({exc})"
    finally:
        probe.close()
    return None


def _stuck_refreshes() -> list[str]:
    from koop_app.conf import koop_settings
    from koop_app.data import recorder

    bound = float(koop_settings.REFRESH_STUCK_SECONDS)
    recorder.reap()
    return [f"the refresh of {row.dataset.route_label} made no progress for {bound:.0f} s "
            f"(phase {row.phase or 'start'})" for row in recorder.stuck(bound)]


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
    reasons = list(warnings)
    if checks["database"]["ok"]:
        locked = _database_writable()
        reasons += [locked] if locked else []
        reasons += _stuck_refreshes()
    status = "down" if not ok else "degraded" if reasons else "ok"
    return JsonResponse({"ok": ok, "status": status, "reasons": reasons, **checks,
                         "workers": workers, "warnings": warnings,
                         "process": _this_process()}, status=200 if ok else 503)
