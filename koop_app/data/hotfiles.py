"""Hot layer files: one DuckDB database file per (layer, version), shared by every process.

A layer's decoded copy is built once per host into ``<folder>/<key digest>/<version>.duckdb``:
written under a temporary name and renamed into place while holding the version's build lock
(an exclusive ``flock``), so that the first process builds it and the others block on the lock
and then use the finished file. Processes attach the file read-only and hold a shared ``flock``
on its use lock while attached: a file is deleted only when nobody holds that lock (checked
without waiting). Lock files are removed with their file; whoever opens one re-checks, after
locking, that the path still names the file it locked.

Nothing here knows about layers: ``HotTables`` (hot.py) decides what to build and attach.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from koop_app.conf import koop_settings

SUFFIX = ".duckdb"
BUILD_LOCK = ".build"
USE_LOCK = ".use"
PARTIAL = ".partial"


def folder() -> Path | None:
    """Where hot files live: KOOP['HOT_DIR'], else <VAR_DIR>/hot; None: in memory per process."""
    configured = koop_settings.HOT_DIR
    if configured is False or configured == "":
        return None
    if configured is None:
        var_dir = getattr(settings, "VAR_DIR", None)
        base = Path(var_dir) if var_dir else Path(tempfile.gettempdir()) / f"koop-{os.getuid()}"
        return base / "hot"
    return Path(configured)


@dataclass(frozen=True)
class HotFile:
    """The paths of one (key, version)'s database file and its two locks."""

    path: Path

    @classmethod
    def of(cls, root: Path, key: str, version: str) -> HotFile:
        digest = hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in version)[:80]
        return cls(root / digest / f"{safe}{SUFFIX}")

    @property
    def build_lock(self) -> Path:
        return self.path.with_suffix(BUILD_LOCK)

    @property
    def use_lock(self) -> Path:
        return self.path.with_suffix(USE_LOCK)

    def partial(self) -> Path:
        """A temporary name for a build in progress, unique to this process and thread."""
        return self.path.with_name(f"{self.path.stem}.{os.getpid()}.{os.urandom(4).hex()}"
                                   f"{PARTIAL}")


def open_locked(path: Path, mode: int) -> int | None:
    """An open descriptor of ``path`` holding ``flock(mode)``; None if LOCK_NB and taken.

    Lock files are deleted by cleaners while they hold them exclusively: after locking, the
    path must still name the locked file, else the lock is on a deleted file and we retry.
    """
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:  # the folder was removed meanwhile
            continue
        try:
            fcntl.flock(fd, mode)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


@contextlib.contextmanager
def build_lock(hot: HotFile) -> Iterator[None]:
    """Held while one process checks for and, if missing, builds ``hot``: others block here."""
    fd = open_locked(hot.build_lock, fcntl.LOCK_EX)
    assert fd is not None
    try:
        yield
    finally:
        os.close(fd)


def hold_use(hot: HotFile) -> int:
    """A shared lock saying "this process uses the file"; close the descriptor to let go."""
    fd = open_locked(hot.use_lock, fcntl.LOCK_SH)
    assert fd is not None
    os.utime(fd)  # the last use, for the disk budget
    return fd


def try_delete(hot: HotFile) -> bool:
    """Delete ``hot`` and its locks if no process builds or uses it now (never waits)."""
    build = open_locked(hot.build_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    if build is None:
        return False
    try:
        use = open_locked(hot.use_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if use is None:
            return False
        try:
            for path in (hot.path, Path(f"{hot.path}.wal"), hot.use_lock, hot.build_lock):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        finally:
            os.close(use)
    finally:
        os.close(build)
    with contextlib.suppress(OSError):  # not empty: other versions, or one just starting
        hot.path.parent.rmdir()
    return True


def delete_now(hot: HotFile) -> None:
    """Remove a damaged file under the build lock the caller holds (users keep their copy)."""
    for path in (hot.path, Path(f"{hot.path}.wal")):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def sweep(root: Path, keep: set[Path] = frozenset(), all_unused: bool = False) -> int:
    """Delete what no process needs; return the bytes left on disk.

    Partial files of builds that died (their build lock is free), and in each key's folder
    every unused version but the newest (a replaced version, or all unused ones when
    ``all_unused``). Then, over KOOP['HOT_DISK_MAX_BYTES'], unused files least recently
    attached first. Files in ``keep`` (this process's own) stay.
    """
    if not root.is_dir():
        return 0
    held: list[tuple[float, int, HotFile]] = []
    for key_dir in [d for d in root.iterdir() if d.is_dir()]:
        for partial in key_dir.glob(f"*{PARTIAL}"):
            owner = HotFile(key_dir / (partial.name.split(".")[0] + SUFFIX))
            fd = open_locked(owner.build_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if fd is not None:
                with contextlib.suppress(FileNotFoundError):
                    partial.unlink()
                os.close(fd)
        versions = []
        for path in key_dir.glob(f"*{SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                versions.append((path.stat().st_mtime, path))
        versions.sort(reverse=True)
        for rank, (_, path) in enumerate(versions):
            hot = HotFile(path)
            if path not in keep and (rank > 0 or all_unused) and try_delete(hot):
                continue
            with contextlib.suppress(FileNotFoundError):
                used = hot.use_lock.stat().st_mtime if hot.use_lock.exists() else 0.0
                held.append((used, path.stat().st_size, hot))
        with contextlib.suppress(OSError):
            key_dir.rmdir()
    total = sum(size for _, size, _ in held)
    budget = koop_settings.HOT_DISK_MAX_BYTES
    if budget is not None and total > budget:
        for _, size, hot in sorted(held, key=lambda item: item[0]):
            if total <= budget:
                break
            if hot.path not in keep and try_delete(hot):
                total -= size
    return total
