"""Structured logs: events as JSON lines or key=value text, fields kept as values."""

from __future__ import annotations

import logging

import orjson
import pytest
from django.conf import settings

from koop_app.logs import JSONFormatter, PlainFormatter, log_event


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
    assert text == ('INFO places refreshed dataset="geojson/places" features=120 '
                    'duration_ms=35')


def test_records_name_the_calling_module_not_the_helper(caplog):
    assert record_of(caplog).filename == "test_logs.py"


@pytest.mark.parametrize("name", ["koop_app", "celery"])
def test_the_site_logs_app_and_workers_as_json_by_default(name):
    assert name in settings.LOGGING["loggers"]
    handler = settings.LOGGING["loggers"][name]["handlers"][0]
    formatter = settings.LOGGING["handlers"][handler]["formatter"]
    assert settings.LOGGING["formatters"][formatter]["()"] == "koop_app.logs.JSONFormatter"
