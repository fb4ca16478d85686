"""What a refresh did, for people: its history row, the dataset's state, its live progress.

A refresh's row is written "running" when it starts (with its process, host:pid), updated
with its progress every few seconds and closed with its outcome. Its progress (phase, bytes
read, features normalised) also goes to the data cache a few times per second, where the admin
and ``koop_refresh`` read it. Every write is one short statement outside the refresh's work,
so bookkeeping never holds the database's write lock for long.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from django.core.cache import cache as django_cache
from django.dispatch import Signal
from django.utils import timezone

from koop_app.data.flight import process_is_gone, process_name
from koop_app.data.progress import Progress
from koop_app.errors import KoopError
from koop_app.logs import log_event
from koop_app.models import Dataset, RefreshLog

logger = logging.getLogger(__name__)
# Sent after a new copy is stored: (dataset, ttl, version). The refresh schedule listens.
refreshed = Signal()
HISTORY_KEPT = 50
# Progress goes to the data cache at most this often, to the history row and the log less often.
CACHE_EVERY_SECONDS = 0.25
ROW_EVERY_SECONDS = 3.0
LOG_EVERY_SECONDS = 5.0
# The last progress of a finished refresh stays readable this long (the admin shows "done").
FINISHED_KEPT_SECONDS = 120
# A queued refresh's row left running this long without progress by a dead process is closed
# as interrupted (a worker that comes back closes its own rows at once: koop_app/tasks.py).
WORKER_REAP_SECONDS = 60.0



class Renewable(Protocol):
    def renew(self) -> None: ...


def progress_key(dataset_id: int) -> str:
    return f"koop:progress:{dataset_id}"


def read_progress(dataset_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The latest progress of each dataset that has one (running or just finished)."""
    ids = list(dataset_ids)
    try:
        found = django_cache.get_many([progress_key(pk) for pk in ids])
    except Exception:
        return {}
    return {pk: found[progress_key(pk)] for pk in ids if progress_key(pk) in found}


def open_row(dataset: Dataset, trigger: str, *, task_id: str = "", worker: str = ""
             ) -> RefreshLog:
    """The history row of a refresh that starts now, written "running"."""
    return RefreshLog.objects.create(
        dataset_id=dataset.pk, started=timezone.now(), trigger=trigger[:16], duration_ms=0,
        ok=False, state=RefreshLog.RUNNING, task_id=task_id, worker=worker[:200],
        process=process_name(), phase="start", progressed=timezone.now())


@dataclass
class Recording:
    """One refresh being recorded; ``progress`` is the callable the refresh reports to."""

    dataset: Dataset
    trigger: str
    row_id: int
    lock: Renewable | None = None
    listener: Progress | None = None
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    clock: float = field(default_factory=time.perf_counter)
    state: dict[str, Any] = field(default_factory=dict)
    _cached: float = 0.0
    _written: float = 0.0
    _logged: float = 0.0

    def __post_init__(self) -> None:
        self.state = {"phase": "start", "bytes_read": 0, "bytes_total": None, "features": 0,
                      "trigger": self.trigger, "started": self.started.timestamp(),
                      "updated": time.time(), "process": process_name(), "running": True}
        self._logged = time.monotonic()
        self._put_cache()

    @property
    def duration_ms(self) -> int:
        return int((time.perf_counter() - self.clock) * 1000)

    def progress(self, phase: str, bytes_read: int | None = None,
                 bytes_total: int | None = None, features: int | None = None) -> None:
        """Where the refresh is: cheap to call often, it writes a few times per second.

        A count left None keeps its last value (a phase that reads no bytes, or counts none).
        """
        changed = phase != self.state["phase"]
        if bytes_read is not None:
            self.state.update(bytes_read=int(bytes_read), bytes_total=None if bytes_total is None
                              else int(bytes_total))
        if features is not None:
            self.state["features"] = int(features)
        self.state.update(phase=phase, updated=time.time())
        bytes_read, bytes_total = self.state["bytes_read"], self.state["bytes_total"]
        features = self.state["features"]
        if self.lock is not None:
            self.lock.renew()
        if self.listener is not None:
            self.listener(phase, bytes_read, bytes_total, features)
        now = time.monotonic()
        if changed or now - self._cached >= CACHE_EVERY_SECONDS:
            self._cached = now
            self._put_cache()
        if changed or now - self._written >= ROW_EVERY_SECONDS:
            self._written = now
            RefreshLog.objects.filter(pk=self.row_id, state=RefreshLog.RUNNING).update(
                phase=phase[:16], bytes_read=bytes_read, bytes_total=bytes_total,
                features=features, progressed=timezone.now())
        if now - self._logged >= LOG_EVERY_SECONDS:  # long refreshes only
            self._logged = now
            log_event(logger, logging.INFO, "refresh.progress", f"{self.dataset.route_label}: "
                      f"{phase}, {bytes_read} bytes read, {features} features",
                      dataset=self.dataset.route_label, dataset_id=self.dataset.pk,
                      phase=phase, bytes_read=bytes_read, bytes_total=bytes_total,
                      features=features, elapsed_ms=self.duration_ms)

    def succeeded(self, *, key: str, version: str, features: int, fetched_at: float,
                  ttl: float) -> int:
        duration_ms = self.duration_ms
        Dataset.objects.filter(pk=self.dataset.pk).update(
            cache_key=key, version=version,
            last_refresh=datetime.fromtimestamp(fetched_at, UTC),
            expires_at=datetime.fromtimestamp(fetched_at + ttl, UTC),
            feature_count=features, refresh_duration_ms=duration_ms,
            last_error="", last_error_at=None)
        self._close(duration_ms, "done", ok=True, features=features, version=version)
        refreshed.send(sender=Dataset, dataset=self.dataset, ttl=ttl, version=version)
        return duration_ms

    def failed(self, exc: BaseException) -> int:
        if isinstance(exc, KoopError):
            # admin_message: network failures keep their detail (refused, reset...) to the log.
            error = f"{type(exc).__name__}: {exc.admin_message}"[:2000]
            Dataset.objects.filter(pk=self.dataset.pk).update(last_error=error,
                                                              last_error_at=self.started)
        else:  # a bug, or the process stopping: the row must not stay running
            error = f"{type(exc).__name__} (see the log)"
        duration_ms = self.duration_ms
        self._close(duration_ms, "failed", ok=False, error=error, features=None)
        return duration_ms

    def joined(self, *, version: str, features: int) -> None:
        """Another process refreshed the dataset meanwhile: this run shares its copy."""
        self._close(self.duration_ms, "done", ok=True, features=features, version=version,
                    error="")

    def _close(self, duration_ms: int, phase: str, **outcome: Any) -> None:
        RefreshLog.objects.filter(pk=self.row_id).update(
            state=RefreshLog.DONE, duration_ms=duration_ms, phase=phase,
            progressed=timezone.now(), **outcome)
        self.state.update(phase=phase, running=False, updated=time.time(),
                          error=outcome.get("error", ""))
        self._put_cache(FINISHED_KEPT_SECONDS)
        old = RefreshLog.objects.filter(dataset_id=self.dataset.pk).values_list(
            "pk", flat=True)[HISTORY_KEPT:]
        RefreshLog.objects.filter(pk__in=list(old)).delete()

    def _put_cache(self, timeout: float | None = None) -> None:
        try:
            django_cache.set(progress_key(self.dataset.pk), dict(self.state),
                             timeout=timeout or 24 * 3600)
        except Exception:
            logger.debug("data cache unavailable for progress", exc_info=True)


def start(dataset: Dataset, trigger: str, *, history_id: int | None = None,
          lock: Renewable | None = None, listener: Progress | None = None) -> Recording:
    """Record a refresh that starts now (in the row ``history_id`` when a task wrote one)."""
    row_id = history_id
    if row_id is None or not RefreshLog.objects.filter(pk=row_id).update(
            process=process_name(), phase="start", progressed=timezone.now()):
        row_id = open_row(dataset, trigger).pk
    return Recording(dataset, trigger, row_id, lock=lock, listener=listener)


def reap(dataset_ids: Iterable[int] | None = None) -> int:
    """Close the rows left running by a process that died (in the history as interrupted).

    In-process refreshes at once; queued ones once they made no progress for a while (their
    worker, when it comes back, closes and queues them again itself).
    """
    rows = RefreshLog.objects.filter(state=RefreshLog.RUNNING).exclude(process="")
    if dataset_ids is not None:
        rows = rows.filter(dataset_id__in=list(dataset_ids))
    quiet_since = timezone.now() - timedelta(seconds=WORKER_REAP_SECONDS)
    closed = 0
    for pk, process, worker, progressed in rows.values_list("pk", "process", "worker",
                                                             "progressed"):
        if not process_is_gone(process):
            continue
        if worker and progressed and progressed > quiet_since:
            continue
        who = f"its worker {worker}" if worker else "its process"
        closed += RefreshLog.objects.filter(pk=pk, state=RefreshLog.RUNNING).update(
            state=RefreshLog.INTERRUPTED, ok=False, phase="interrupted",
            error=f"interrupted: {who} ({process}) stopped during the refresh")
    return closed


def stuck(seconds: float) -> list[RefreshLog]:
    """Running refreshes with no progress for ``seconds`` (their process hangs, or is gone)."""
    since = timezone.now() - timedelta(seconds=seconds)
    return list(RefreshLog.objects.filter(state=RefreshLog.RUNNING, progressed__lt=since)
                .select_related("dataset", "dataset__provider"))
