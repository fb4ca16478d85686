"""One refresh per dataset at a time, and bounded waits for those who need its result.

Two layers:

- ``CacheLock``: across processes and workers, a lock in the data cache. Its token names the
  holder's host and pid, so a holder that died on this host is replaced at once instead of
  after the lock expires; the holder renews it while it makes progress.
- ``Flight``: across the threads of one process, one run per key; every caller waits for that
  run at most its own deadline (threading.Event), then gets ``DatasetLoadingError``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from django.core.cache import cache as django_cache

from koop_app.data import cache
from koop_app.errors import DatasetLoadingError

T = TypeVar("T")
HOST = socket.gethostname()
# How often a process waiting for another's lock looks again (only one thread per key does).
POLL_SECONDS = 0.1
# A holder renews its lock at most this often.
RENEW_SECONDS = 2.0


def process_name(pid: int | None = None) -> str:
    return f"{HOST}:{pid or os.getpid()}"


def process_is_gone(name: str) -> bool:
    """Whether ``name`` (host:pid) is a process of this host that no longer runs."""
    host, _, pid = name.rpartition(":")
    if host != HOST or not pid.isdigit():
        return False  # another machine's process: only its lock's expiry tells
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


class CacheLock:
    """A lock named ``name`` in the data cache, held at most ``seconds`` unless renewed."""

    def __init__(self, name: str, seconds: float) -> None:
        self.name = name
        self.seconds = seconds
        self.token = f"{process_name()}:{uuid.uuid4().hex}"
        self._renewed = 0.0

    def acquire(self) -> bool:
        if cache.acquire(self.name, self.token, self.seconds):
            self._renewed = time.monotonic()
            return True
        holder = self.holder()
        if holder and process_is_gone(holder.rsplit(":", 1)[0]):
            cache.release(self.name, holder)  # its holder died here: take it over
            return self.acquire_once()
        return False

    def acquire_once(self) -> bool:
        got = cache.acquire(self.name, self.token, self.seconds)
        if got:
            self._renewed = time.monotonic()
        return got

    def holder(self) -> str | None:
        try:
            value = django_cache.get(self.name)
        except Exception:  # the cache is down: nobody holds anything
            return None
        return value if isinstance(value, str) else None

    def renew(self) -> None:
        """Push the expiry back (the holder is alive and working); at most every few s."""
        now = time.monotonic()
        if now - self._renewed < RENEW_SECONDS:
            return
        self._renewed = now
        try:
            if django_cache.get(self.name) == self.token:
                django_cache.touch(self.name, max(1, int(self.seconds)))
        except Exception:
            pass  # the cache is down: the lock lapses; the refresh itself goes on

    def release(self) -> None:
        cache.release(self.name, self.token)

    def wait_released(self, timeout: float) -> bool:
        """Wait until nobody holds the lock (True), at most ``timeout`` seconds (False)."""
        deadline = time.monotonic() + timeout
        while True:
            holder = self.holder()
            if holder is None or process_is_gone(holder.rsplit(":", 1)[0]):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)


@dataclass
class _Run(Generic[T]):
    done: threading.Event = field(default_factory=threading.Event)
    result: T | None = None
    error: BaseException | None = None


class Flight(Generic[T]):
    """One run of ``work`` per key in this process; callers wait for it, bounded in time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, _Run[T]] = {}

    def join(self, key: str, work: Callable[[], T], *, wait: float, inline: bool = False,
             retry_after: int = 5) -> T:
        """The result of the run for ``key``, starting it when none runs here.

        The run goes on in a thread of its own (or in this one when ``inline``: a caller inside
        a database transaction, whose rows another thread could not see); callers wait at most
        ``wait`` seconds, then get ``DatasetLoadingError`` while it goes on.
        """
        with self._lock:
            run = self._runs.get(key)
            starts = run is None
            if run is None:
                run = self._runs[key] = _Run()
        if starts:
            if inline:
                self._execute(key, run, work)
            else:
                threading.Thread(target=self._execute, args=(key, run, work), daemon=True,
                                 name=f"koop-flight-{key[:40]}").start()
        if not run.done.wait(timeout=max(0.0, wait)):
            raise DatasetLoadingError(retry_after=retry_after,
                                      log_message=f"{key}: still loading after {wait:.0f} s")
        if run.error is not None:
            raise run.error
        return run.result  # type: ignore[return-value]

    def running(self, key: str) -> bool:
        return key in self._runs

    def wait(self, timeout: float) -> None:
        """Wait for the runs under way (tests, a clean shutdown)."""
        for run in list(self._runs.values()):
            run.done.wait(timeout)

    def _execute(self, key: str, run: _Run[T], work: Callable[[], T]) -> None:
        try:
            run.result = work()
        except BaseException as exc:  # handed to every waiting caller
            run.error = exc
        finally:
            with self._lock:
                if self._runs.get(key) is run:
                    del self._runs[key]
            run.done.set()
