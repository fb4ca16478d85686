"""koop_providers: the registered providers, their URL shape, cache policy and options."""

from __future__ import annotations

import io
from typing import Any, ClassVar

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from koop_app.conf import koop_settings
from koop_app.models import Provider as ProviderRow
from koop_app.options import Option
from koop_app.provider import Controller, Provider, Route
from koop_app.registry import registry
from providers.geojson.provider import GeoJSONProvider


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("koop_providers", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def blocks(text: str) -> dict[str, str]:
    """The text output cut into one block per provider (blocks start at column 0)."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        if line and not line.startswith(" "):
            current = found.setdefault(line.split()[0], [])
        current.append(line)
    return {name: "\n".join(lines) for name, lines in found.items()}


@pytest.mark.django_db
def test_text_lists_the_built_in_providers():
    out, err = run()
    found = blocks(out)
    assert set(found) == set(registry.names()) >= {"csv", "geojson", "records"}
    assert err == ""

    geojson = found["geojson"]
    assert "version   1.0.0 (providers.geojson.provider.GeoJSONProvider)" in geojson
    assert "url       /geojson/rest/services/<id>/FeatureServer  (no :host, takes :id)" in geojson
    assert f"default TTL {koop_settings.DEFAULT_TTL} s (KOOP['DEFAULT_TTL'])" in " ".join(
        geojson.split())
    source = GeoJSONProvider.options_schema[0]
    assert "    source  string (a path in the data folder, or an http(s) URL), required\n" \
        in geojson
    assert " ".join(f"{source.label}. {source.help}".split()) in " ".join(geojson.split())
    assert f"data folder (KOOP['DATA_DIR']): {koop_settings.DATA_DIR}" in geojson

    csv = found["csv"]
    for name in ("source", "latitude", "longitude", "wkt", "delimiter", "encoding"):
        assert f"\n    {name} " in csv
    assert "options (6; set as NAME=VALUE)" in csv

    records = found["records"]
    assert "cache     pass-through: the source is asked on every request" in records
    assert "    page_size  integer, default 500\n" in records
    assert "    url        string, required\n" in records


@pytest.mark.django_db
def test_json_lists_the_built_in_providers():
    out, _ = run("--json")
    document = orjson.loads(out)
    assert [p["name"] for p in document["providers"]] == registry.names()
    assert document["problems"] == []
    assert document["data_dir"] == str(koop_settings.DATA_DIR)
    by_name = {p["name"]: p for p in document["providers"]}
    geojson = by_name["geojson"]
    assert {key: geojson[key] for key in ("version", "class", "cache_policy", "takes_host",
                                          "takes_id", "service_url", "enabled")} == {
        "version": "1.0.0", "class": "providers.geojson.provider.GeoJSONProvider",
        "cache_policy": "cached", "takes_host": False, "takes_id": True,
        "service_url": "/geojson/rest/services/<id>/FeatureServer", "enabled": True}
    source = GeoJSONProvider.options_schema[0]
    assert source.label and source.help
    assert geojson["options"] == [{
        "name": "source", "label": source.label, "type": "string", "kind": "location",
        "required": True, "default": None, "choices": [], "help": source.help}]
    records = by_name["records"]
    assert records["cache_policy"] == "pass-through"
    page_size = next(o for o in records["options"] if o["name"] == "page_size")
    assert (page_size["type"], page_size["default"], page_size["required"]) == (
        "integer", 500, False)
    assert [o["name"] for o in by_name["csv"]["options"]] == [
        "source", "latitude", "longitude", "wkt", "delimiter", "encoding"]


@pytest.mark.django_db
def test_one_provider_by_name():
    out, _ = run("csv")
    assert list(blocks(out)) == ["csv"]
    document = orjson.loads(run("csv", "--json")[0])
    assert document["name"] == "csv" and len(document["options"]) == 6


@pytest.mark.django_db
def test_an_unknown_name_lists_the_registered_ones():
    # Every registered name, sorted (the built-in ones among them).
    with pytest.raises(CommandError, match=r"Provider 'nope' is not registered \(registered: "
                                           r"csv, geojson, (.+, )?records"):
        run("nope")


class TrailsController(Controller):
    def stats(self, request: Any, **kwargs: Any) -> Any:  # pragma: no cover - not served here
        raise NotImplementedError


class TrailsProvider(Provider):
    """A plugin with every fact set: title, description, :host and no :id, extra routes."""

    name = "trails"
    title = "Trail networks"
    description = "Hiking trails from a park service's API, one service per park."
    version = "2.1.0"
    hosts = True
    disable_id_param = True
    routes = (Route("stats", "stats", ("GET", "POST")),)
    controller_class = TrailsController
    options_schema: ClassVar = (
        Option("api_key", str, required=True, kind="secret", help="the park service's key"),
        Option("difficulty", str, default="any", choices=("any", "easy", "hard"),
               help="which trails to serve"),
        Option("loops_only", bool, default=False, label="Loops only"),
    )

    def get_data(self, request: Any) -> dict[str, Any]:  # pragma: no cover - not fetched here
        return {"type": "FeatureCollection", "features": []}


@pytest.fixture
def trails(settings):
    with override_settings(KOOP={**settings.KOOP, "PROVIDERS": [
            "providers.geojson.GeoJSONProvider",
            "tests.management.commands.test_koop_providers.TrailsProvider",
            "tests.management.commands.test_koop_providers.Missing"]}):
        yield
    registry.reset()


@pytest.mark.django_db
def test_a_plugin_s_facts_and_this_site_s_settings(trails):
    ProviderRow.objects.update_or_create(name="trails", defaults={
        "cache_policy": ProviderRow.CACHED, "default_ttl": 90, "enabled": False})
    out, err = run()
    text = blocks(out)["trails"]
    assert text.startswith("trails  Trail networks\n  Hiking trails from a park service's API")
    assert "url       /trails/rest/services/<host>/FeatureServer  (takes :host, no :id)" in text
    assert "extra     /trails/stats  (GET, POST)" in text
    assert "enabled   no: its datasets are not served" in text
    flat = " ".join(text.split())
    assert "default TTL 90 s (this site's setting)" in flat
    assert "    api_key     string (secret), required\n" in text
    assert "    difficulty  string, default any, one of: any, easy, hard\n" in text
    assert "    loops_only  boolean, default false\n                Loops only" in text
    assert "data folder" not in text  # no option names a file
    assert "Not registered (see `manage.py check`):" in err
    assert "tests.management.commands.test_koop_providers.Missing" in err

    document = orjson.loads(run("--json")[0])
    assert [p["source"] for p in document["problems"]] == [
        "KOOP['PROVIDERS'] entry 'tests.management.commands.test_koop_providers.Missing'"]
    trails_facts = next(p for p in document["providers"] if p["name"] == "trails")
    assert {key: trails_facts[key] for key in (
        "title", "description", "version", "enabled", "cache_policy", "default_ttl",
        "takes_host", "takes_id", "service_url", "extra_routes")} == {
        "title": "Trail networks",
        "description": "Hiking trails from a park service's API, one service per park.",
        "version": "2.1.0", "enabled": False, "cache_policy": "cached", "default_ttl": 90,
        "takes_host": True, "takes_id": False,
        "service_url": "/trails/rest/services/<host>/FeatureServer",
        "extra_routes": [{"path": "/trails/stats", "methods": ["GET", "POST"]}]}
    difficulty = trails_facts["options"][1]
    assert (difficulty["choices"], difficulty["default"]) == (["any", "easy", "hard"], "any")
    assert trails_facts["options"][2]["type"] == "boolean"


@pytest.mark.django_db
def test_a_site_policy_other_than_the_plugin_s_is_pointed_out(trails):
    ProviderRow.objects.update_or_create(name="geojson", defaults={
        "cache_policy": ProviderRow.PASS_THROUGH})
    text = blocks(run("geojson")[0])["geojson"]
    assert ("cache     pass-through: the source is asked on every request (the plugin "
            "declares cached)") in text
