"""DuckDB connections with the spatial extension, loaded from its PyPI wheel (no network)."""

from __future__ import annotations

import heapq
import importlib.abc
import importlib.util
import itertools
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import duckdb_extension_spatial

_installed = threading.Lock()
_done = False

# DuckDB's Python binding tries ``import pandas`` for every value it binds (to recognise pandas'
# missing values). Without pandas each try searches the whole sys.path again: ~60 µs a value,
# seconds for a few thousand. When pandas is not installed, a finder first in line says so at
# once: the same ImportError, without the search. (Side effect: importlib.util.find_spec("pandas")
# raises ModuleNotFoundError instead of returning None; no dependency asks that way.)


class _PandasAbsent(importlib.abc.MetaPathFinder):
    """Answers "no module named pandas" without searching sys.path."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname == "pandas":
            raise ModuleNotFoundError("No module named 'pandas'", name="pandas")
        return None


if not any(type(finder).__name__ == "_PandasAbsent" for finder in sys.meta_path) and (
        importlib.util.find_spec("pandas") is None):
    sys.meta_path.insert(0, _PandasAbsent())

def extension_path() -> Path:
    """The spatial extension file shipped by the wheel for this DuckDB version."""
    base = Path(duckdb_extension_spatial.__file__).parent / "extensions"
    path = base / f"v{duckdb.__version__}" / "spatial.duckdb_extension"
    if not path.exists():
        found = sorted(base.glob("*/spatial.duckdb_extension"))
        raise RuntimeError(
            f"duckdb {duckdb.__version__} needs duckdb-extension-spatial of the same version; "
            f"the wheel has {[p.parent.name for p in found]}"
        )
    return path


def connect(database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A new database (in memory by default) with spatial loaded; use ``.cursor()`` per thread."""
    global _done
    con = duckdb.connect(database, config={
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        # Give freed query memory back soon: a web process should stay near its tables' size.
        "allocator_flush_threshold": "16MB",
        "allocator_bulk_deallocation_flush_threshold": "16MB",
        "allocator_background_threads": True,
    })
    with _installed:
        if not _done:
            con.execute(f"INSTALL '{extension_path()}'")
            _done = True
    con.execute("LOAD spatial")
    # Never draw DuckDB's progress bar on a terminal or into a worker's log (cursors inherit).
    con.execute("SET enable_progress_bar = false")
    return con


def quote_ident(name: str) -> str:
    """A SQL identifier for a column name taken from data (never from a request)."""
    return '"' + name.replace('"', '""') + '"'


def enum_type(labels: Iterable[str]) -> str:
    """The SQL type ENUM('a', 'b', ...) of a few-valued text column, labels as given."""
    return "ENUM(" + ", ".join(quote_string(label) for label in labels) + ")"


def quote_string(text: str) -> str:
    """A SQL string literal for a name taken from data (never from a request)."""
    return "'" + text.replace("'", "''") + "'"


class _Watchdog:
    """One thread that interrupts statements past their deadline (a timer thread each is dear)."""

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._due: list[tuple[float, int]] = []
        # Only statements still running hold their cursor here, so results are not kept alive.
        self._live: dict[int, duckdb.DuckDBPyConnection] = {}
        self._numbers = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, cursor: duckdb.DuckDBPyConnection, seconds: float) -> int:
        with self._wake:
            number = next(self._numbers)
            heapq.heappush(self._due, (time.monotonic() + seconds, number))
            self._live[number] = cursor
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="duckdb-watchdog",
                                                daemon=True)
                self._thread.start()
            if self._due[0][1] == number:
                # Due before all others: wake the thread to wait for this one. Otherwise it
                # wakes for an earlier one anyway (waking it per statement cost ~0.1 ms).
                self._wake.notify()
            return number

    def release(self, number: int) -> None:
        with self._wake:
            self._live.pop(number, None)

    def _run(self) -> None:
        with self._wake:
            while True:
                while self._due and self._due[0][1] not in self._live:
                    heapq.heappop(self._due)  # finished in time
                if not self._due:
                    self._wake.wait()
                    continue
                deadline, number = self._due[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._due)
                self._live.pop(number).interrupt()


_watchdog = _Watchdog()


@contextmanager
def time_limit(cursor: duckdb.DuckDBPyConnection, seconds: float | None) -> Iterator[None]:
    """Interrupt ``cursor``'s statement after ``seconds``: it raises duckdb.InterruptException.

    ``interrupt()`` stops only this cursor's statement; the database and its tables stay usable.
    """
    if not seconds or seconds <= 0:
        yield
        return
    number = _watchdog.watch(cursor, seconds)
    try:
        yield
    finally:
        _watchdog.release(number)
