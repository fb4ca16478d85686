"""The registry: settings paths, entry points, and the system checks for broken plugins."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from koop_app import checks
from koop_app.conf import koop_settings
from koop_app.errors import NotFoundError
from koop_app.provider import Provider
from koop_app.registry import ProviderRegistry


class Good(Provider):
    name = "good"

    def get_data(self, request):
        return {"type": "FeatureCollection", "features": []}


class Twin(Good):
    pass


class NoGetData(Provider):
    name = "nogetdata"


@pytest.fixture
def fresh(monkeypatch):
    registry = ProviderRegistry()
    monkeypatch.setattr("koop_app.registry.registry", registry)
    monkeypatch.setattr("koop_app.checks.registry", registry)
    monkeypatch.setattr("koop_app.registry.entry_points", lambda group: [])
    return registry


def test_settings_paths(fresh):
    with override_settings(KOOP={"PROVIDERS": ["tests.test_registry.Good"]}):
        assert fresh.names() == ["good"]
        assert isinstance(fresh.get("good"), Good)
        assert fresh.problems() == []
    with pytest.raises(NotFoundError):
        fresh.get("missing")


def test_built_ins_are_registered_by_default():
    from koop_app.registry import registry

    assert {"geojson", "csv"} <= set(registry.names())


def test_entry_points(fresh, monkeypatch):
    point = EntryPoint(name="good", value="tests.test_registry:Good", group="koop.providers")
    monkeypatch.setattr("koop_app.registry.entry_points",
                        lambda group: [point] if group == "koop.providers" else [])
    with override_settings(KOOP={"PROVIDERS": []}):
        assert fresh.names() == ["good"]


def test_import_failure_is_check_E001(fresh):
    with override_settings(KOOP={"PROVIDERS": ["tests.test_registry.Good",
                                               "no.such.module.Provider"]}):
        assert fresh.names() == ["good"]  # the broken one is left out, the rest still work
        [message] = checks.check_providers()
        assert message.id == "koop_app.E001"
        assert "no.such.module.Provider" in message.msg
        assert message.hint


def test_broken_contract_is_check_E002(fresh):
    with override_settings(KOOP={"PROVIDERS": ["tests.test_registry.NoGetData"]}):
        [message] = checks.check_providers()
        assert message.id == "koop_app.E002"
        assert "get_data" in message.msg


def test_duplicate_name_is_reported(fresh):
    with override_settings(KOOP={"PROVIDERS": ["tests.test_registry.Good",
                                               "tests.test_registry.Twin"]}):
        assert fresh.names() == ["good"]
        [problem] = fresh.problems()
        assert "already registered" in problem.message


def test_entry_point_import_failure(fresh, monkeypatch):
    point = EntryPoint(name="gone", value="no_such_pkg:Gone", group="koop.providers")
    monkeypatch.setattr("koop_app.registry.entry_points", lambda group: [point])
    with override_settings(KOOP={"PROVIDERS": []}):
        [message] = checks.check_providers()
        assert message.id == "koop_app.E001"
        assert "gone" in message.msg


def test_unknown_setting_key_fails_loudly(fresh):
    with override_settings(KOOP={"PROVIDRES": []}):
        with pytest.raises(ImproperlyConfigured, match="PROVIDRES"):
            _ = koop_settings.PROVIDERS
        [message] = checks.check_providers()
        assert message.id == "koop_app.E003"


def test_settings_override_and_restore():
    before = koop_settings.DEFAULT_TTL
    with override_settings(KOOP={"DEFAULT_TTL": 5}):
        assert koop_settings.DEFAULT_TTL == 5
        assert koop_settings.MAX_RESULT_RECORDS == 100_000  # defaults fill the rest
    assert koop_settings.DEFAULT_TTL == before


def test_missing_data_dir_is_a_warning(fresh, tmp_path):
    with override_settings(KOOP={"PROVIDERS": [], "DATA_DIR": str(tmp_path / "nope")}):
        [message] = checks.check_providers()
        assert message.id == "koop_app.W001"


def test_one_class_under_two_names_is_one_plugin():
    """Listed in KOOP["PROVIDERS"] and found again as an entry point: not a name clash."""
    from koop_app.registry import _same_plugin
    from providers.csv_ import CSVProvider
    from providers.geojson import GeoJSONProvider

    assert _same_plugin(GeoJSONProvider, GeoJSONProvider)
    assert not _same_plugin(GeoJSONProvider, CSVProvider)
    twin = type("GeoJSONProvider", (GeoJSONProvider,), {"__module__": "elsewhere"})
    assert not _same_plugin(GeoJSONProvider, twin)  # a subclass made elsewhere is another plugin
