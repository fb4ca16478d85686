"""DuckDB connections with the spatial extension, loaded from its PyPI wheel (no network)."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import duckdb_extension_spatial

_installed = threading.Lock()
_done = False


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


def connect() -> duckdb.DuckDBPyConnection:
    """A new in-memory database with spatial loaded; use ``.cursor()`` per thread."""
    global _done
    con = duckdb.connect(config={
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
    return con


def quote_ident(name: str) -> str:
    """A SQL identifier for a column name taken from data (never from a request)."""
    return '"' + name.replace('"', '""') + '"'


def quote_string(text: str) -> str:
    """A SQL string literal for a name taken from data (never from a request)."""
    return "'" + text.replace("'", "''") + "'"
