"""Refreshes as people see them: one line of progress per dataset (admin, koop_refresh)."""

from __future__ import annotations

from typing import Any

from koop_app.data import recorder
from koop_app.models import RefreshLog


def size(count: int | None) -> str:
    if count is None:
        return "?"
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("kB", 1024)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def describe(progress: dict[str, Any]) -> str:
    """``normalize: 12.0 MB of 58.3 MB read, 40000 features`` (or how it ended)."""
    if not progress.get("running"):
        error = progress.get("error")
        return f"{progress.get('phase')}: {error}" if error else str(progress.get("phase"))
    read, total = progress.get("bytes_read") or 0, progress.get("bytes_total")
    bytes_part = f"{size(read)} of {size(total)} read" if total else f"{size(read)} read"
    return f"{progress['phase']}: {bytes_part}, {progress.get('features') or 0} features"


def of_datasets(dataset_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The progress of each dataset with a refresh running or just finished, by id.

    From the data cache (a few updates per second); a running history row without one in the
    cache (a cache outage) shows what the row last said.
    """
    recorder.reap(dataset_ids)
    found = recorder.read_progress(dataset_ids)
    missing = [pk for pk in dataset_ids if pk not in found]
    for row in RefreshLog.objects.filter(dataset_id__in=missing, state=RefreshLog.RUNNING):
        found.setdefault(row.dataset_id, {
            "phase": row.phase or "start", "bytes_read": row.bytes_read or 0,
            "bytes_total": row.bytes_total, "features": row.features or 0,
            "trigger": row.trigger, "running": True,
            "updated": row.progressed.timestamp() if row.progressed else None})
    return {pk: {**progress, "text": describe(progress)} for pk, progress in found.items()}
