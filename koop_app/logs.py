"""Structured logs: one JSON object per line, with named events for fetches and refreshes.

Code logs an event with ``log_event``; the event name and its fields travel on the record, so
``JSONFormatter`` writes them as keys and the plain formatter appends them as ``key=value``::

    log_event(logger, logging.INFO, "refresh.done", "places refreshed",
              dataset="geojson/places", features=120, duration_ms=35)

    {"time": "2026-11-22T09:00:00.123Z", "level": "INFO", "logger": "koop_app.data",
     "event": "refresh.done", "message": "places refreshed", "dataset": "geojson/places",
     "features": 120, "duration_ms": 35}

``settings.LOGGING`` picks the formatter (``KOOP_LOG_FORMAT=json|plain`` in ``koopsite``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

# Attributes every LogRecord has; anything else on a record came in through ``extra``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}


def log_event(logger: logging.Logger, level: int, event: str, message: str,
              exc_info: bool | BaseException = False, **fields: Any) -> None:
    """Log ``message`` as the named ``event`` with ``fields`` kept as structured values."""
    if logger.isEnabledFor(level):
        logger.log(level, message, exc_info=exc_info, stacklevel=2,
                   extra={"event": event, "koop_fields": fields})


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = dict(getattr(record, "koop_fields", None) or {})
    for name, value in vars(record).items():  # other ``extra`` keys, e.g. from libraries
        if name not in _RECORD_ATTRIBUTES and name not in {"event", "koop_fields"}:
            fields.setdefault(name, value)
    return fields


class JSONFormatter(logging.Formatter):
    """A record as one line of JSON: time (UTC), level, logger, event, message, fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
        }
        if getattr(record, "event", None):
            line["event"] = record.event  # type: ignore[attr-defined]
        line["message"] = record.getMessage()
        line.update(_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class PlainFormatter(logging.Formatter):
    """The usual one-line text, with the event's fields appended as ``key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _fields(record)
        if not fields:
            return text
        pairs = " ".join(f"{name}={orjson.dumps(value, default=str).decode()}"
                         for name, value in fields.items())
        first, newline, rest = text.partition("\n")  # keep a traceback below the fields
        return f"{first} {pairs}{newline}{rest}"
