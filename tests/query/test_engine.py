"""The engine's one door to DuckDB: every request statement runs through ``execute``."""

from __future__ import annotations

import re
from pathlib import Path

import koop_app

APP = Path(koop_app.__file__).parent


def test_request_sql_runs_only_through_execute():
    """``execute`` applies the time limit and maps errors; nothing else opens a cursor."""
    opened = re.compile(r"\.cursor\(\)|duckdb\.(connect|sql|execute)\(")
    offenders = [
        f"{path.relative_to(APP)}:{number}"
        for folder in ("query", "outputs")
        for path in sorted((APP / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if opened.search(line) and path.name != "engine.py"
    ]
    assert offenders == []
