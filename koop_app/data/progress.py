"""The progress of the refresh running in this thread, for code far below it (a reader).

``build`` reports its phases itself; a reader of the source (koop_app/net/client.py) calls
``read(bytes_read, bytes_total)`` as bytes arrive, and it reaches the refresh's recorder here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# progress(phase, bytes_read, bytes_total, features); a count left None is unchanged.
Progress = Callable[[str, int | None, int | None, int | None], None]
_reporter: ContextVar[Progress | None] = ContextVar("koop_refresh_progress", default=None)


@contextmanager
def reporting(progress: Progress) -> Iterator[None]:
    token = _reporter.set(progress)
    try:
        yield
    finally:
        _reporter.reset(token)


def read(bytes_read: int, bytes_total: int | None = None) -> None:
    """Bytes of the source read so far (by the refresh of this thread, if one runs)."""
    report = _reporter.get()
    if report is not None:
        report("fetch", bytes_read, bytes_total, 0)
