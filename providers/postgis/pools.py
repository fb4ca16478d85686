"""Connections to the configured PostgreSQL servers: one pool per connection, read-only work.

A connection is configured by the operator (``KOOP["CONNECTIONS"]["postgis"][name]``)::

    {"dsn": "postgresql://reader@db.internal:5432/gis", "password": "...",
     "pool_size": 4, "statement_timeout": 10, "schemas": ["public"],
     "queries": {"parks_by_city": "SELECT ..."}}

Every statement runs in a READ ONLY transaction, with the session in UTC and a server-side
``statement_timeout`` (the smaller of the connection's and KOOP['QUERY_TIMEOUT_SECONDS']), so
a slow query is stopped by PostgreSQL itself and answered as QueryTimeoutError. Errors never
carry the DSN or the password: messages for clients are ours, log lines are redacted.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg
import psycopg_pool
from psycopg import errors as pg_errors
from psycopg.conninfo import make_conninfo

from koop_app.conf import koop_settings
from koop_app.connections import MASK, connection, redact_url
from koop_app.errors import (
    InvalidParameterError,
    KoopError,
    OptionsError,
    QueryTimeoutError,
    SourceAuthError,
    SourceConnectError,
    SourceError,
)
from koop_app.logs import log_event

logger = logging.getLogger(__name__)

PROVIDER = "postgis"
DEFAULT_POOL_SIZE = 4
# What the server's own messages may say about the values a where clause met (SQLSTATE class
# 22, data exceptions: division by zero, a logarithm of zero, a bad date text).
VALUE_PROBLEM = "a value in the clause cannot be used or converted (an overflow, a division " \
                "by zero, the logarithm of zero, a text that is not a date or number, ...)"


class Server:
    """One configured connection: its settings, its pool, and how to run statements on it."""

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        self.name = name
        self.settings = settings
        dsn = settings.get("dsn") or settings.get("url")
        if not isinstance(dsn, str) or not dsn.strip():
            raise OptionsError(f"The postgis connection {name!r} has no dsn.",
                               log_message=f"KOOP['CONNECTIONS']['postgis'][{name!r}] lacks "
                                           "'dsn'")
        extra = {key: settings[key] for key in ("user", "password") if settings.get(key)}
        try:
            self.conninfo = make_conninfo(dsn, **extra)
        except psycopg.ProgrammingError:
            raise OptionsError(f"The postgis connection {name!r} has a malformed dsn.",
                               log_message=f"malformed dsn for postgis connection {name!r}: "
                                           f"{redact_url(dsn)}") from None
        self.password = str(settings.get("password") or "") or _dsn_password(self.conninfo)
        self.pool_size = max(1, int(settings.get("pool_size") or DEFAULT_POOL_SIZE))
        self.statement_timeout = settings.get("statement_timeout")
        schemas = settings.get("schemas")
        self.schemas: tuple[str, ...] | None = (
            tuple(str(s) for s in schemas) if isinstance(schemas, Sequence)
            and not isinstance(schemas, str) else None)
        self._pool: psycopg_pool.ConnectionPool | None = None
        self._lock = threading.Lock()
        self.srids: dict[int, bool] = {}  # spatial_ref_sys membership, asked once per SRID

    # --- the pool --------------------------------------------------------------------------

    def _connect_kwargs(self) -> dict[str, Any]:
        # libpq counts connect_timeout in whole seconds, at least 2.
        return {"connect_timeout": max(2, round(float(koop_settings.CONNECT_TIMEOUT))),
                "application_name": "koop", "prepare_threshold": None}

    def _configure(self, conn: psycopg.Connection) -> None:
        conn.read_only = True
        conn.autocommit = True
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("SET datestyle TO ISO")
        conn.autocommit = False

    def pool(self) -> psycopg_pool.ConnectionPool:
        with self._lock:
            if self._pool is None:
                # One direct connection first: a refused connection or a wrong password is
                # reported as such at once, not as a pool waiting out its timeout.
                self.probe()
                self._pool = psycopg_pool.ConnectionPool(
                    self.conninfo, min_size=1, max_size=self.pool_size,
                    kwargs=self._connect_kwargs(), configure=self._configure, open=True,
                    timeout=float(koop_settings.CONNECT_TIMEOUT) + 2,
                    name=f"koop-postgis-{self.name}", reconnect_timeout=60)
            return self._pool

    def probe(self) -> None:
        """Connect once, directly, raising our error for what went wrong."""
        try:
            with psycopg.connect(self.conninfo, **self._connect_kwargs()):
                pass
        except psycopg.Error as exc:
            raise self.mapped(exc) from None

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    # --- statements ------------------------------------------------------------------------

    def timeout_seconds(self) -> float | None:
        limits = [float(v) for v in (koop_settings.QUERY_TIMEOUT_SECONDS, self.statement_timeout)
                  if v]
        return min(limits) if limits else None

    @contextmanager
    def cursor(self, *, parallel: bool = True) -> Iterator[psycopg.Cursor]:
        """A cursor in a read-only transaction with the statement timeout set; errors mapped.

        ``parallel=False`` for statements that stop early (a page, LIMIT n): starting parallel
        workers costs tens of milliseconds, more than such a statement's whole scan.
        """
        try:
            pool = self.pool()
            with pool.connection() as conn:
                with conn.cursor() as cur:
                    seconds = self.timeout_seconds()
                    timeout = f"{max(1, round(seconds * 1000))}ms" if seconds else "0"
                    serial = "" if parallel else (
                        ", set_config('max_parallel_workers_per_gather', '0', true)")
                    cur.execute(f"SELECT set_config('statement_timeout', %s, true){serial}",
                                (timeout,))
                    yield cur
        except psycopg_pool.PoolTimeout:
            self.probe()  # the cause, when the server cannot be reached now
            raise SourceConnectError(log_message=f"postgis {self.name}: no pooled connection "
                                                 "became free in time") from None
        except psycopg.Error as exc:
            raise self.mapped(exc) from None

    def rows(self, sql: str, params: Sequence[Any] = (), *, parallel: bool = True
             ) -> list[tuple[Any, ...]]:
        with self.cursor(parallel=parallel) as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def mapped(self, exc: psycopg.Error) -> KoopError:
        """Our error for a psycopg one; the server's words only in the (redacted) log."""
        text = self.redact(f"{type(exc).__name__}: {exc}".strip())
        where = f"postgis {self.name}"
        if isinstance(exc, pg_errors.QueryCanceled):
            seconds = self.timeout_seconds() or 0
            return QueryTimeoutError(
                f"The query took longer than the allowed {seconds:g} seconds and was stopped.",
                details=["Narrow the query: a smaller area, a more selective where, fewer ids."],
                log_message=f"{where}: statement timeout: {text}")
        refused = (pg_errors.InvalidPassword, pg_errors.InvalidAuthorizationSpecification)
        if isinstance(exc, refused) or "password authentication failed" in text \
                or "no password supplied" in text:
            return SourceAuthError(log_message=f"{where}: {text}")
        if isinstance(exc, pg_errors.InsufficientPrivilege):
            return SourceAuthError("The database refused access to this table.",
                                   log_message=f"{where}: {text}")
        if (exc.sqlstate or "").startswith("22"):  # data exceptions
            error = InvalidParameterError("where", VALUE_PROBLEM)
            error.log_message = f"{where}: query refused on a value: {text}"
            return error
        if isinstance(exc, psycopg.OperationalError):
            return SourceConnectError(log_message=f"{where}: {text}")
        return SourceError("The database failed to answer the query.",
                           log_message=f"{where}: {text}")

    def redact(self, text: str) -> str:
        text = redact_url(text)
        if self.password:
            text = text.replace(self.password, MASK)
        return text


def _dsn_password(conninfo: str) -> str:
    try:
        return psycopg.conninfo.conninfo_to_dict(conninfo).get("password") or ""
    except psycopg.ProgrammingError:
        return ""


_servers: dict[str, tuple[str, Server]] = {}
_servers_lock = threading.Lock()


def server(name: str | None) -> Server:
    """The Server of the configured connection ``name`` (UnknownConnectionError: 404)."""
    settings = connection(PROVIDER, name)
    digest = hashlib.sha256(orjson.dumps(dict(settings), default=str,
                                         option=orjson.OPT_SORT_KEYS)).hexdigest()
    key = str(name)
    with _servers_lock:
        known = _servers.get(key)
        if known is not None and known[0] == digest:
            return known[1]
        if known is not None:  # the operator changed it: a new pool for the new settings
            known[1].close()
        found = Server(key, settings)
        _servers[key] = (digest, found)
        return found


def close_all() -> None:
    """Close every pool (tests, a clean shutdown)."""
    with _servers_lock:
        for _, item in _servers.values():
            item.close()
        _servers.clear()


def log_failure(label: str, error: KoopError) -> None:
    log_event(logger, logging.WARNING, "postgis.failed", f"{label}: {error.log_message}",
              dataset=label, error=type(error).__name__)
