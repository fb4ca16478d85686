"""Output plugins: found in KOOP["OUTPUTS"] and the ``koop.outputs`` entry-point group, mounted,
listed by ``/rest/info`` ("outputs") and by the services directory ("offers")."""

from __future__ import annotations

import sys
import textwrap
from importlib import invalidate_caches
from pathlib import Path

import pytest
from django.urls import include, path, resolve

from koop_app.outputs import output_modules, output_name
from koop_app.urls import build_urlpatterns
from tests.conftest import collection, feature, point

PLUGIN = '''
"""An installed output, registered by its distribution's entry point only."""
from django.http import HttpResponse

from koop_app.outputs import Offer, OutputRoute


def hello(request, provider, host=None, id=None):
    return HttpResponse(f"fake {provider} {id}", content_type="text/plain")


name = "fakeout"
routes = [OutputRoute(r"$namespace/$providerParamsfake", hello, "fake-hello")]
offers = [Offer("Fake format", "fake-hello")]
'''


def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry_points: str) -> None:
    """A distribution on sys.path: a ``*.dist-info`` with ``entry_points.txt`` and a module."""
    (tmp_path / "fake_output_plugin.py").write_text(PLUGIN)
    info = tmp_path / "fake_output_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-output-plugin\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    monkeypatch.syspath_prepend(str(tmp_path))
    invalidate_caches()
    monkeypatch.delitem(sys.modules, "fake_output_plugin", raising=False)


@pytest.fixture
def site_with(settings):
    """``site_with(outputs)``: the site's URLs rebuilt with KOOP["OUTPUTS"] = ``outputs``."""

    def rebuild(outputs: list[str]) -> None:
        settings.KOOP = {**settings.KOOP, "OUTPUTS": outputs}
        settings.ROOT_URLCONF = type("URLConf", (), {"urlpatterns": [
            path("", include((build_urlpatterns(), "koop")))]})

    return rebuild


@pytest.mark.django_db
def test_an_entry_point_output_is_mounted_and_listed(client, make_dataset, tmp_path,
                                                     monkeypatch, site_with):
    install(tmp_path, monkeypatch, """
        [koop.outputs]
        fakeout = fake_output_plugin
    """)
    site_with(["koop_app.outputs.geoservices"])
    make_dataset("geojson", "pts", collection([feature({"a": 1}, point(1, 2))]))
    assert [output_name(m) for m in output_modules()] == ["geoservices", "fakeout"]
    # mounted per provider, with the provider's parameters, behind the access gate
    match = resolve("/geojson/pts/fake")
    assert match.url_name == "fake-hello" and match.kwargs == {"provider": "geojson",
                                                                "id": "pts"}
    assert client.get("/geojson/pts/fake").content == b"fake geojson pts"
    # listed: /rest/info names the output and its kinds; the directory each dataset's URL
    info = client.get("/rest/info", {"f": "json"}).json()
    assert info["outputs"] == [{"name": "geoservices", "offers": ["FeatureServer"]},
                               {"name": "fakeout", "offers": ["Fake format"]}]
    services = client.get("/rest/services/geojson", {"f": "json"}).json()["services"]
    entry = next(s for s in services if s["name"] == "geojson/pts")
    assert entry["type"] == "FeatureServer"
    assert entry["offers"]["Fake format"] == "http://testserver/geojson/pts/fake"
    assert entry["offers"]["FeatureServer"].endswith("/geojson/rest/services/pts/FeatureServer")


@pytest.mark.django_db
def test_order_and_duplicates(client, tmp_path, monkeypatch, site_with):
    # an entry point naming a module the settings list already holds adds nothing
    install(tmp_path, monkeypatch, """
        [koop.outputs]
        flat = koop_app.outputs.flat
        fakeout = fake_output_plugin
    """)
    site_with(["koop_app.outputs.flat", "koop_app.outputs.geoservices",
               "koop_app.outputs.flat", "tests.outputs.tiny"])
    names = [output_name(m) for m in output_modules()]
    assert names == ["flat", "geoservices", "tiny", "fakeout"]  # settings first, in order
    info = client.get("/rest/info", {"f": "json"}).json()
    assert [o["name"] for o in info["outputs"]] == names
    assert {"name": "tiny", "offers": ["Tiny counts"]} in info["outputs"]
    # each route mounted once per provider: names resolve to one pattern
    assert resolve("/geojson/pts/export/0.csv").url_name == "flat-csv"
    assert resolve("/tiny").url_name == "tiny-hello"


@pytest.mark.django_db
def test_an_output_left_out_of_the_settings_is_not_mounted(client, make_dataset, site_with):
    site_with(["koop_app.outputs.geoservices"])
    make_dataset("geojson", "pts", collection([feature({"a": 1}, point(1, 2))]))
    assert client.get("/geojson/pts/export/0.csv").status_code == 404
    info = client.get("/rest/info", {"f": "json"}).json()
    assert [o["name"] for o in info["outputs"]] == ["geoservices"]
    services = client.get("/rest/services/geojson", {"f": "json"}).json()["services"]
    assert set(services[0]["offers"]) == {"FeatureServer"}
