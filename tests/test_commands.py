"""Datasets as code: koop_dataset, koop_export, koop_import; and the demo set-up commands."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from koop_app.models import Dataset, RefreshLog
from tests.conftest import collection, feature, point, write_json


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.django_db
class TestKoopDataset:
    def test_add_then_update(self, data_dir):
        write_json(data_dir / "p.geojson", collection([feature({"a": 1}, point(0, 0))]))
        output = run("koop_dataset", "geojson", "parks", "--option", "source=p.geojson",
                     "--name", "Parks", "--ttl", "60")
        assert "Created geojson/parks" in output
        assert "/geojson/rest/services/parks/FeatureServer/0" in output
        dataset = Dataset.objects.get(dataset_id="parks")
        assert (dataset.name, dataset.ttl, dataset.options) == ("Parks", 60,
                                                                {"source": "p.geojson"})
        output = run("koop_dataset", "geojson", "parks", "--description", "d", "--disable",
                     "--fields", '{"a": {"alias": "A"}}', "--refresh")
        assert "Updated geojson/parks" in output and "Refreshed: 1 features" in output
        dataset.refresh_from_db()
        assert (dataset.description, dataset.enabled, dataset.name) == ("d", False, "Parks")
        assert dataset.fields_override == {"a": {"alias": "A"}}
        assert dataset.options == {"source": "p.geojson"}  # kept when not given

    def test_options_as_json_and_key_value(self, data_dir):
        (data_dir / "s.csv").write_text("name;geom\na;POINT (1 2)\n")
        run("koop_dataset", "csv", "s", "--options", '{"source": "s.csv", "delimiter": ";"}',
            "--option", "wkt=geom")
        assert Dataset.objects.get(dataset_id="s").options == {  # unset options left out
            "source": "s.csv", "delimiter": ";", "wkt": "geom"}

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["nope", "x"], "not registered"),
            (["geojson", "x"], "source: this option is required"),
            (["geojson", "x", "--option", "source=../../etc/passwd"], "outside"),
            (["geojson", "x", "--option", "nokey"], "key=value"),
            (["geojson", "x", "--options", "[1]"], "JSON object"),
            (["geojson", "x", "--options", "{"], "not valid JSON"),
            (["geojson", "x", "--option", "source=missing.geojson", "--refresh"],
             "'missing.geojson' does not exist"),
            (["geojson", "x", "--option", "source=missing.geojson"],
             "'missing.geojson' does not exist.*Nothing was saved"),
        ],
    )
    def test_errors(self, data_dir, args, message):
        with pytest.raises(CommandError, match=message):
            run("koop_dataset", *args)
        assert not Dataset.objects.exists()

    def test_check_prints_what_it_found(self, data_dir):
        write_json(data_dir / "t.geojson", collection([
            feature({"name": "oak", "height": 12.5}, point(1, 2)),
            feature({"name": "elm", "height": 8}, point(3, 4))]))
        output = run("koop_dataset", "geojson", "trees", "--option", "source=t.geojson")
        assert "Checked t.geojson: 2 features, Point geometry, 2 fields." in output
        assert "Fields: name (String), height (Double)" in output
        assert "name=oak, height=12.5" in output
        assert "Created geojson/trees" in output

    def test_failing_refresh_creates_nothing(self, data_dir):
        (data_dir / "r.geojson").write_bytes(b"{broken")
        with pytest.raises(CommandError, match=r"Refresh failed: Reading r.geojson failed: The "
                                               r"GeoJSON source is not valid JSON.*Nothing was "
                                               r"saved"):
            run("koop_dataset", "geojson", "r", "--option", "source=r.geojson", "--no-check",
                "--refresh")
        assert not Dataset.objects.exists()
        assert not RefreshLog.objects.exists()

    def test_failing_check_leaves_an_update_out(self, data_dir):
        write_json(data_dir / "u.geojson", collection([feature({"a": 1}, point(0, 0))]))
        run("koop_dataset", "geojson", "u", "--option", "source=u.geojson", "--name", "U")
        with pytest.raises(CommandError, match="'gone.geojson' does not exist"):
            run("koop_dataset", "geojson", "u", "--option", "source=gone.geojson", "--name", "V")
        dataset = Dataset.objects.get()
        assert (dataset.name, dataset.options) == ("U", {"source": "u.geojson"})

    def test_no_check_saves_an_offline_source(self, data_dir):
        output = run("koop_dataset", "geojson", "later", "--option", "source=later.geojson",
                     "--no-check")
        assert "Checked" not in output and "Created geojson/later" in output


@pytest.mark.django_db
def test_export_import_round_trip(data_dir, tmp_path: Path):
    run("koop_dataset", "geojson", "a", "--option", "source=a.geojson", "--name", "A",
        "--ttl", "30", "--id-field", "fid", "--max-record-count", "500", "--no-check")
    run("koop_dataset", "csv", "b", "--option", "source=b.csv", "--option", "latitude=y",
        "--no-check")
    target = tmp_path / "datasets.json"
    call_command("koop_export", str(target), stderr=io.StringIO())
    document = orjson.loads(target.read_bytes())
    assert document["version"] == 1
    assert [(d["provider"], d["id"]) for d in document["datasets"]] == [("csv", "b"),
                                                                       ("geojson", "a")]
    exported_a = document["datasets"][1]
    assert exported_a["ttl"] == 30 and exported_a["id_field"] == "fid"
    assert exported_a["access"] == Dataset.PUBLIC
    assert exported_a["case_sensitive_strings"] is False
    document["datasets"][0]["access"] = Dataset.SIGNED_IN
    document["datasets"][0]["case_sensitive_strings"] = True
    target.write_bytes(orjson.dumps(document))

    Dataset.objects.all().delete()
    assert "Imported 2 datasets (2 new, 0 updated)." in run("koop_import", str(target))
    a = Dataset.objects.get(dataset_id="a")
    assert (a.name, a.ttl, a.max_record_count, a.options) == ("A", 30, 500,
                                                              {"source": "a.geojson"})
    b = Dataset.objects.get(dataset_id="b")
    assert (b.access, b.case_sensitive_strings) == (Dataset.SIGNED_IN, True)
    assert "(0 new, 2 updated)" in run("koop_import", str(target))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"{", "not valid JSON"),
        (b"[]", "Expected"),
        (b'{"version": 9, "datasets": []}', "version"),
        (b'{"datasets": [{"provider": "geojson", "id": "ok", "options": {"source": "o.json"}},'
         b' {"provider": "geojson", "id": "bad", "options": {}}]}',
         r"Entry 1 \(geojson//bad\): options: source"),
        (b'{"datasets": [{"provider": "geojson", "id": "x", "colour": 1}]}', "colour"),
        (b'{"datasets": [{"provider": "geojson", "id": "x", "options": {"source": "x.json"},'
         b' "access": "friends"}]}', "access"),
    ],
)
def test_import_is_all_or_nothing(data_dir, tmp_path, document, message):
    path = tmp_path / "in.json"
    path.write_bytes(document)
    with pytest.raises(CommandError, match=message):
        run("koop_import", str(path))
    assert not Dataset.objects.exists()


@pytest.mark.django_db
def test_import_missing_file():
    with pytest.raises(CommandError, match="Cannot read"):
        run("koop_import", "/nonexistent/file.json")


@pytest.mark.django_db
def test_demo_datasets_are_served(client, data_dir):
    output = run("koop_demo")
    for path in ("/geojson/rest/services/places/FeatureServer/0",
                 "/geojson/rest/services/regions/FeatureServer/0",
                 "/csv/rest/services/stations/FeatureServer/0",
                 "/csv/rest/services/zones/FeatureServer/0"):
        assert path in output
        layer = orjson.loads(client.get(path).content)
        assert layer["type"] == "Feature Layer", layer
        body = orjson.loads(client.get(path + "/query", {"where": "1=1",
                                                          "returnCountOnly": "true"}).content)
        assert body["count"] > 0
    geometry_types = {
        orjson.loads(client.get(f"/{p}/rest/services/{i}/FeatureServer/0").content)[
            "geometryType"]
        for p, i in [("geojson", "places"), ("geojson", "regions"), ("csv", "stations"),
                     ("csv", "zones")]
    }
    assert geometry_types == {"esriGeometryPoint", "esriGeometryPolygon"}


@pytest.mark.django_db
def test_admin_user_command(monkeypatch, settings, tmp_path):
    from django.contrib.auth import get_user_model

    settings.VAR_DIR = tmp_path
    monkeypatch.setenv("KOOP_ADMIN_USER", "boss")
    monkeypatch.setenv("KOOP_ADMIN_PASSWORD", "s3cret-pw")
    assert "'boss'" in run("koop_admin_user")
    assert get_user_model().objects.get(username="boss").check_password("s3cret-pw")
    monkeypatch.delenv("KOOP_ADMIN_PASSWORD")
    monkeypatch.setenv("KOOP_ADMIN_USER", "other")
    output = run("koop_admin_user")
    password = (tmp_path / "admin_password").read_text()
    assert password in output
    assert get_user_model().objects.get(username="other").check_password(password)


@pytest.mark.django_db
def test_koop_refresh_shows_a_progress_bar(make_dataset, source_server, settings):
    import io

    import orjson

    from tests.conftest import collection, feature, point

    settings.KOOP = {**settings.KOOP, "MAX_FETCH_SECONDS": 10}
    body = orjson.dumps(collection([feature({"n": i}, point(i, i)) for i in range(300)]))

    def chunks():
        for start in range(0, len(body), len(body) // 6 + 1):
            yield body[start:start + len(body) // 6 + 1]

    url = source_server.route("/bar.geojson", chunks=chunks, chunk_delay=0.2)
    make_dataset("geojson", "bar", options={"source": url})
    out, err = io.StringIO(), io.StringIO()
    call_command("koop_refresh", "geojson/bar", stdout=out, stderr=err)
    assert "geojson/bar: 300 features" in out.getvalue()
    bar = err.getvalue()
    assert "geojson/bar fetch" in bar and "kB" in bar
    assert "300 features" in bar  # the bar's last state
