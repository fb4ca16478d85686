"""A bug of ours: logged with a reference, answered with code 500 and nothing else."""

from __future__ import annotations

import logging

import orjson
import pytest
from django.test import Client

from koop_app.outputs.geoservices.handlers import CRASH_EVENT, geoservices_exception_handler

pytestmark = [pytest.mark.urls("tests.outputs.geoservices.crash_urls"),
              pytest.mark.expected_server_error(500)]
SECRETS = (b"secret", b"/srv/", b"DATABASE_URL", b"RuntimeError", b"Traceback", b"settings")


def crash_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == CRASH_EVENT]


@pytest.mark.parametrize("path", ["/crash/rest/boom", "/crash/rest/plain", "/crash/rest/koop"])
def test_crash_under_rest_is_code_500_with_a_reference(client, caplog, path):
    for send in (client.get, client.post):
        response = send(path, {"a": "1"}, HTTP_ORIGIN="https://maps.example")
        assert response.status_code == 200
        error = orjson.loads(response.content)["error"]
        reference = error["message"].rsplit(" ", 1)[-1].rstrip(".")
        assert error == {"code": 500, "details": [],
                         "message": f"An unexpected error occurred, reference {reference}."}
        assert not any(secret in response.content for secret in SECRETS)
        assert response["Access-Control-Allow-Origin"] == "*"
        logged = crash_records(caplog)[-1]
        assert logged.koop_fields["reference"] == reference
        assert logged.exc_info and "DATABASE_URL" in repr(logged.exc_info[1])


def test_crash_keeps_jsonp(client):
    response = client.get("/crash/rest/boom", {"callback": "cb"})
    assert response.content.startswith(b'cb({"error":{"code":500')


def test_crash_elsewhere_is_a_plain_500_page(caplog):
    response = Client(raise_request_exception=False).get("/crash/page")
    assert response.status_code == 500
    assert not any(secret in response.content for secret in SECRETS)


def test_debug_re_raises_for_development(settings):
    settings.DEBUG = True
    assert geoservices_exception_handler(RuntimeError("bug"), {}) is None  # DRF re-raises
