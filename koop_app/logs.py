"""Structured logs: JSON lines for collectors, readable text on a terminal.

Code logs an event with ``log_event``; the event name and its fields travel on the record, so
``JSONFormatter`` writes them as keys and ``PlainFormatter`` appends them as ``key=value``::

    log_event(logger, logging.INFO, "refresh.done", "places refreshed",
              dataset="geojson/places", features=120, duration_ms=35)

    {"time": "2026-11-22T09:00:00.123Z", "level": "INFO", "logger": "koop_app.data",
     "event": "refresh.done", "message": "places refreshed", "dataset": "geojson/places",
     "features": 120, "duration_ms": 35}

    2026-11-22 09:00:00.123 INFO    koop_app.data  places refreshed  event=refresh.done
        dataset=geojson/places features=120 duration_ms=35      (on one line)

``ConsoleHandler`` picks between the two for each record from where it writes: plain text when
its stream is a terminal, JSON otherwise (a pipe, a file, a container's log driver), unless
``log_format`` forces one. ``koopsite`` reads that from ``KOOP_LOG_FORMAT=json|plain``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import IO, Any

import orjson

# Attributes every LogRecord has; anything else on a record came in through ``extra``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}

LOG_FORMATS = ("auto", "json", "plain")


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
        elif record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


def plain_value(value: Any) -> str:
    """A field's value as a person reads it: bare words and numbers, JSON for the rest.

    A string goes bare unless it is empty or holds a space, a quote, ``=`` or a control
    character, so that ``key=value`` pairs still split unambiguously; then it is JSON-quoted.
    """
    if isinstance(value, str):
        if value and value.isprintable() and not any(c in value for c in ' "=\\'):
            return value
        return orjson.dumps(value).decode()
    return orjson.dumps(value, default=str).decode()


class PlainFormatter(logging.Formatter):
    """One line for a person: time, level, logger, message, then the fields as ``key=value``.

    A traceback follows on the next lines. ``fmt`` replaces the head of the line (everything
    before the fields) as in ``logging.Formatter``.
    """

    default_fmt = "%(asctime)s %(levelname)-7s %(name)s  %(message)s"
    default_msec_format = "%s.%03d"

    def __init__(self, fmt: str | None = None, datefmt: str | None = None,
                 style: Any = "%", **kwargs: Any) -> None:
        super().__init__(fmt or self.default_fmt, datefmt, style, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        pairs = []
        if getattr(record, "event", None):
            pairs.append(f"event={plain_value(record.event)}")  # type: ignore[attr-defined]
        pairs.extend(f"{name}={plain_value(value)}" for name, value in _fields(record).items())
        if not pairs:
            return text
        first, newline, rest = text.partition("\n")  # keep a traceback below the fields
        return f"{first}  {' '.join(pairs)}{newline}{rest}"


def is_terminal(stream: IO[str] | Any) -> bool:
    """Whether ``stream`` is a terminal; a closed or odd stream (no ``isatty``) is not."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes plain text to a terminal and JSON lines anywhere else.

    ``log_format`` is ``"auto"`` (decide per record from ``stream.isatty()``, so a stream
    swapped with ``setStream`` is judged afresh), ``"json"`` or ``"plain"``. A formatter set
    with ``setFormatter`` (or ``"formatter"`` in ``LOGGING``) wins over both.

        LOGGING = {"version": 1, "handlers": {"console": {
            "()": "koop_app.logs.ConsoleHandler", "log_format": "auto"}}, ...}
    """

    def __init__(self, stream: IO[str] | None = None, log_format: str = "auto") -> None:
        if log_format not in LOG_FORMATS:
            raise ValueError(f"log_format must be one of {', '.join(LOG_FORMATS)}, "
                             f"not {log_format!r}")
        super().__init__(stream)
        self.log_format = log_format
        self.plain = PlainFormatter()
        self.json = JSONFormatter()

    def formatter_for_stream(self) -> logging.Formatter:
        if self.formatter is not None:
            return self.formatter
        return self.plain if writes_plain(self.log_format, self.stream) else self.json

    def format(self, record: logging.LogRecord) -> str:
        return self.formatter_for_stream().format(record)


def writes_plain(log_format: str, stream: IO[str] | Any) -> bool:
    """Whether a ``ConsoleHandler`` with ``log_format`` writes plain text to ``stream``."""
    return log_format == "plain" or (log_format == "auto" and is_terminal(stream))
