"""A throwaway PostgreSQL + PostGIS cluster from Debian's packages, on 127.0.0.1, for tests.

    with Postgres(free_port(), "koop", "secret", "gis").start() as pg:   # or .start()/.stop()
        psycopg.connect(pg.url("gis"))

``make test`` installs the packages (scripts/ensure-debs: postgresql, postgresql-15-postgis-3).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

LOOPBACK = "127.0.0.1"


def bindir() -> Path:
    """Debian keeps PostgreSQL's server programs out of PATH, per major version."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    assert initdb, "PostgreSQL is not installed (make test installs it: scripts/ensure-debs)"
    return Path(initdb).parent


class Postgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1 with the postgis/postgis image's setup."""

    def __init__(self, port: int, user: str, password: str, database: str) -> None:
        self.port, self.user, self.password, self.database = port, user, password, database
        # PostgreSQL refuses to run as root: then the cluster belongs to "postgres".
        self.run_as = "postgres" if os.geteuid() == 0 else None
        self.folder = Path(tempfile.mkdtemp(prefix="koop-pg-"))
        self.data = self.folder / "data"

    def _run(self, *argv: str) -> None:
        subprocess.run(argv, check=True, capture_output=True, user=self.run_as, timeout=120,
                       cwd=self.folder)

    def start(self) -> Postgres:
        (self.folder / "pw").write_text(self.password)
        if self.run_as:
            shutil.chown(self.folder, self.run_as)
            shutil.chown(self.folder / "pw", self.run_as)
        programs = bindir()
        self._run(str(programs / "initdb"), "-D", str(self.data), "-U", self.user,
                  f"--pwfile={self.folder / 'pw'}", "--auth=scram-sha-256", "-E", "UTF8")
        options = (f"-c listen_addresses={LOOPBACK} -c port={self.port} "
                   f"-c unix_socket_directories={self.folder} -c fsync=off")
        self._run(str(programs / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.folder / "server.log"), "-o", options, "-w", "start")
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        with psycopg.connect(self.url(self.database), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        return self

    def url(self, database: str) -> str:
        return (f"postgresql://{self.user}:{self.password}@{LOOPBACK}:{self.port}/{database}")

    def __enter__(self) -> Postgres:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run([str(bindir() / "pg_ctl"), "-D", str(self.data), "-m", "fast",
                            "-w", "stop"], capture_output=True, user=self.run_as, timeout=60,
                           cwd=self.folder)
        shutil.rmtree(self.folder, ignore_errors=True)
