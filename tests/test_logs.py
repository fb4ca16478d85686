"""Logs: JSON lines or readable key=value text, chosen per stream; fields kept as values."""

from __future__ import annotations

import io
import logging
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from django.conf import settings
from django.db import connection

from koop_app.logs import (
    ConsoleHandler,
    JSONFormatter,
    PlainFormatter,
    is_terminal,
    log_event,
    plain_value,
    writes_plain,
)
from tests.conftest import collection, feature, point

ROOT = Path(__file__).resolve().parent.parent
# The head of a plain line: date, time with milliseconds, level padded to 7, logger, message.
PLAIN_HEAD = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} "


def record_of(caplog, **kwargs) -> logging.LogRecord:
    logger = logging.getLogger("koop_app.test")
    with caplog.at_level(logging.INFO, logger="koop_app"):
        log_event(logger, logging.INFO, "refresh.done", "places refreshed",
                  dataset="geojson/places", features=120, duration_ms=35, **kwargs)
    (record,) = [r for r in caplog.records if r.name == "koop_app.test"]
    return record


def test_json_lines_carry_the_event_and_its_fields(caplog):
    line = orjson.loads(JSONFormatter().format(record_of(caplog)))
    assert line["event"] == "refresh.done"
    assert line["message"] == "places refreshed"
    assert (line["dataset"], line["features"], line["duration_ms"]) == ("geojson/places", 120, 35)
    assert line["level"] == "INFO" and line["logger"] == "koop_app.test"
    assert line["time"].endswith("Z")


def test_json_lines_hold_the_traceback_and_plain_records(caplog):
    logger = logging.getLogger("koop_app.test")
    with caplog.at_level(logging.INFO, logger="koop_app"):
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("plain %s", "text")
    line = orjson.loads(JSONFormatter().format(caplog.records[-1]))
    assert line["message"] == "plain text" and "event" not in line
    assert "ValueError: boom" in line["exception"]


def test_plain_text_appends_the_fields(caplog):
    text = PlainFormatter("%(levelname)s %(message)s").format(record_of(caplog))
    assert text == ("INFO places refreshed  event=refresh.done dataset=geojson/places "
                    "features=120 duration_ms=35")


def test_plain_lines_read_as_time_level_logger_message_fields(caplog):
    text = PlainFormatter().format(record_of(caplog))
    assert re.fullmatch(PLAIN_HEAD + r"INFO    koop_app\.test  places refreshed  "
                        r"event=refresh\.done dataset=geojson/places features=120 "
                        r"duration_ms=35", text), text


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("geojson/places", "geojson/places"),
        ("Zürich", "Zürich"),
        ("two words", '"two words"'),
        ("", '""'),
        ("a=b", '"a=b"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("line\nbreak", '"line\\nbreak"'),
        (120, "120"),
        (1.5, "1.5"),
        (True, "true"),
        (None, "null"),
        ({"a": [1, 2]}, '{"a":[1,2]}'),
        (Path("/data/x.csv"), '"/data/x.csv"'),
    ],
)
def test_plain_values_are_bare_unless_they_need_quotes(value, shown):
    assert plain_value(value) == shown


def test_plain_text_keeps_the_traceback_below_the_fields(caplog):
    logger = logging.getLogger("koop_app.test")
    with caplog.at_level(logging.INFO, logger="koop_app"):
        try:
            raise ValueError("boom")
        except ValueError as exc:
            log_event(logger, logging.ERROR, "refresh.failed", "it broke", exc_info=exc,
                      dataset="geojson/x", error="no such file")
    first, *rest = PlainFormatter().format(caplog.records[-1]).splitlines()
    assert re.fullmatch(PLAIN_HEAD + r"ERROR   koop_app\.test  it broke  event=refresh\.failed "
                        r'dataset=geojson/x error="no such file"', first), first
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: boom"


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as a console's stderr does."""

    def isatty(self) -> bool:
        return True


def emit(handler: logging.Handler, message: str = "places refreshed") -> None:
    record = logging.LogRecord("koop_app.test", logging.INFO, __file__, 1, message, (), None)
    record.event = "refresh.done"
    record.koop_fields = {"dataset": "geojson/places", "features": 3}
    handler.handle(record)


@pytest.mark.parametrize(
    ("log_format", "stream", "plain"),
    [
        ("auto", Terminal, True),
        ("auto", io.StringIO, False),
        ("json", Terminal, False),
        ("json", io.StringIO, False),
        ("plain", Terminal, True),
        ("plain", io.StringIO, True),
    ],
)
def test_console_handler_writes_plain_to_terminals_and_json_elsewhere(log_format, stream,
                                                                       plain):
    out = stream()
    emit(ConsoleHandler(out, log_format=log_format))
    line = out.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    if plain:
        assert re.fullmatch(PLAIN_HEAD + r"INFO    koop_app\.test  places refreshed  "
                            r"event=refresh\.done dataset=geojson/places features=3\n", line)
    else:
        assert orjson.loads(line) == {**orjson.loads(line), "level": "INFO",
                                      "message": "places refreshed", "event": "refresh.done",
                                      "dataset": "geojson/places", "features": 3}
    assert writes_plain(log_format, out) is plain


def test_console_handler_decides_per_stream_at_format_time():
    handler = ConsoleHandler(io.StringIO())
    emit(handler)
    assert orjson.loads(handler.stream.getvalue())["event"] == "refresh.done"
    terminal = Terminal()
    handler.setStream(terminal)
    emit(handler)
    assert re.fullmatch(PLAIN_HEAD + r"INFO +koop_app\.test  places refreshed  .*\n",
                        terminal.getvalue())


def test_console_handler_on_a_real_pty_writes_plain():
    leader, follower = pty.openpty()
    try:
        with open(follower, "w", closefd=False) as stream:
            assert is_terminal(stream)
            handler = ConsoleHandler(stream)
            emit(handler)
            handler.flush()
        text = os.read(leader, 4096).decode().replace("\r\n", "\n")
    finally:
        os.close(leader)
        os.close(follower)
    assert re.fullmatch(PLAIN_HEAD + r"INFO .*places refreshed  event=refresh\.done .*\n", text)


def test_a_set_formatter_wins_and_bad_formats_are_refused():
    out = Terminal()
    handler = ConsoleHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    emit(handler)
    assert out.getvalue() == "places refreshed\n"
    with pytest.raises(ValueError, match="log_format must be one of auto, json, plain"):
        ConsoleHandler(log_format="xml")


def test_odd_streams_are_not_terminals():
    closed = io.StringIO()
    closed.close()
    assert not is_terminal(closed)
    assert not is_terminal(object())


def test_records_name_the_calling_module_not_the_helper(caplog):
    assert record_of(caplog).filename == "test_logs.py"


def test_every_logger_goes_through_the_console_handler():
    logging_config = settings.LOGGING
    handler = logging_config["handlers"]["console"]
    assert handler["()"] == "koop_app.logs.ConsoleHandler"
    assert logging_config["root"]["handlers"] == ["console"]
    for name in ("koop_app", "celery", "django"):  # they reach it through the root
        assert not logging_config["loggers"][name].get("handlers")
        assert logging_config["loggers"][name].get("propagate", True)


def site_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "KOOP_LOG_FORMAT"}
    return {**env, "DJANGO_SETTINGS_MODULE": "tests.settings", **extra}


def settings_log_format(**extra: str) -> subprocess.CompletedProcess[str]:
    code = ("from django.conf import settings; "
            "print(settings.LOGGING['handlers']['console']['log_format'])")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=site_env(**extra),
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("value", "chosen"), [("", "auto"), ("json", "json"),
                                               (" Plain ", "plain"), ("auto", "auto")])
def test_koop_log_format_forces_a_format(value, chosen):
    result = settings_log_format(KOOP_LOG_FORMAT=value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == chosen


def test_an_unknown_koop_log_format_is_refused_by_name():
    result = settings_log_format(KOOP_LOG_FORMAT="xml")
    assert result.returncode != 0
    assert "KOOP_LOG_FORMAT must be json, plain or auto (or unset), not 'xml'" in result.stderr


def run_in_pty(command: list[str], env: dict[str, str], timeout: float = 60,
               until: str | None = None) -> str:
    """Run ``command`` with a terminal as its stdin, stdout and stderr; return what it wrote.

    With ``until``, the command is stopped (SIGTERM) once that text has appeared.
    """
    leader, follower = pty.openpty()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=follower, stdout=follower,
                               stderr=follower)
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
                if until and until.encode() in b"".join(chunks) and process.poll() is None:
                    process.terminate()
                    until = None
            elif process.poll() is not None:
                break
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
    return b"".join(chunks).decode().replace("\r\n", "\n")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_manage_py_logs_plain_on_a_terminal_and_json_into_a_pipe(make_dataset):
    make_dataset("geojson", "logged", collection([feature({"n": 1}, point(1, 2))]))
    env = site_env(DATABASE_URL=f"sqlite:///{connection.settings_dict['NAME']}",
                   KOOP_LOG_LEVEL="INFO")
    command = [sys.executable, "manage.py", "koop_refresh", "--no-progress", "geojson/logged"]

    on_terminal = run_in_pty(command, env)
    done = [line for line in on_terminal.splitlines() if "event=refresh.done" in line]
    assert len(done) == 1, on_terminal
    assert re.match(PLAIN_HEAD + r"INFO    koop_app\.data  geojson/logged: refreshed 1 features"
                    r"  event=refresh\.done dataset=geojson/logged .*features=1 ", done[0])
    assert "{" not in on_terminal, on_terminal  # no JSON anywhere
    assert "geojson/logged: 1 features" in on_terminal  # the command's own output

    piped = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=60)
    assert piped.returncode == 0, piped.stderr
    lines = [orjson.loads(line) for line in piped.stderr.splitlines()]  # every line is JSON
    (done_line,) = [line for line in lines if line.get("event") == "refresh.done"]
    assert done_line["dataset"] == "geojson/logged" and done_line["features"] == 1
    assert done_line["logger"] == "koop_app.data" and done_line["time"].endswith("Z")
    assert piped.stdout.startswith("geojson/logged: 1 features")

    forced = run_in_pty(command, {**env, "KOOP_LOG_FORMAT": "json"})
    assert any(orjson.loads(line).get("event") == "refresh.done"
               for line in forced.splitlines() if line.startswith("{"))


def run_worker_until_ready(env: dict[str, str], terminal: bool) -> tuple[str, str]:
    """Start a Celery worker, stop it once it says it is ready; return (stdout, stderr)."""
    command = [sys.executable, "-m", "celery", "-A", "koopsite", "worker", "--pool", "solo",
               "-n", "logs-test@%h"]
    if terminal:
        return run_in_pty(command, env, until="ready."), ""
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        stderr = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            stderr.append(line)
            if not line or "ready." in line:
                break
        process.terminate()
        out, rest = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return out, "".join(stderr) + rest


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_worker_logs_json_without_its_banner_into_a_pipe(tmp_path):
    env = site_env(DATABASE_URL=f"sqlite:///{connection.settings_dict['NAME']}",
                   KOOP_VAR_DIR=str(tmp_path), CELERY_BROKER_URL="filesystem://")
    out, err = run_worker_until_ready(env, terminal=False)
    assert "[queues]" not in out and "[config]" not in out  # the banner
    logged = [orjson.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(line["logger"] == "celery.apps.worker" and line["message"].endswith("ready.")
               for line in logged), err

    on_terminal = run_worker_until_ready(env, terminal=True)[0]
    assert "[queues]" in on_terminal  # a person starting it sees the banner
    assert re.search(PLAIN_HEAD + r"INFO    celery\.apps\.worker  logs-test@\S+ ready\.",
                     on_terminal), on_terminal
