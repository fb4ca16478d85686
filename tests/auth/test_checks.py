"""The token settings are checked at start-up."""

from __future__ import annotations

import pytest
from django.test import override_settings

from koop_app.auth.checks import check_token_settings


def ids(settings, **values) -> list[str]:
    with override_settings(KOOP={**settings.KOOP, **values}):
        return [message.id for message in check_token_settings()]


def test_defaults_pass(settings):
    assert ids(settings) == []


@pytest.mark.parametrize("value", [0, -1, "60", 1.5, True])
def test_minutes_must_be_whole_and_positive(settings, value):
    assert ids(settings, TOKEN_MAX_MINUTES=value) == ["koop_app.E101"]


def test_default_above_maximum_warns(settings):
    assert ids(settings, TOKEN_DEFAULT_MINUTES=120, TOKEN_MAX_MINUTES=60) == ["koop_app.W101"]
