"""Getting data: cached copies, TTL expiry, failures served from the last good copy, clearing."""

from __future__ import annotations

import itertools
import time

import orjson
import pytest

from koop_app import data
from koop_app.data import cache
from koop_app.data import served as served_module
from koop_app.errors import SourceFormatError, SourceNotFoundError
from koop_app.models import Dataset, Provider
from tests.conftest import age_copy, collection, feature, point, write_json

# Every test here runs over the embedded file cache and over a real Redis.
pytestmark = pytest.mark.usefixtures("any_cache")


def doc(n: int) -> dict:
    return collection([feature({"n": i}, point(i, i)) for i in range(n)])


def table_of(dataset):
    return data.get_table(dataset, data.provider_request(dataset))


@pytest.mark.django_db
def test_first_request_fetches_and_records_state(make_dataset):
    dataset = make_dataset("geojson", "d", doc(3), ttl=60)
    table = table_of(dataset)
    assert table.count == 3
    dataset.refresh_from_db()
    assert dataset.feature_count == 3
    assert dataset.version == table.version
    assert dataset.cache_key == "geojson::d"
    assert dataset.last_refresh is not None and dataset.refresh_duration_ms is not None
    assert dataset.expires_at.timestamp() == pytest.approx(time.time() + 60, abs=5)
    assert dataset.last_error == ""


@pytest.mark.django_db
def test_fresh_copy_is_not_refetched(make_dataset, data_dir):
    dataset = make_dataset("geojson", "d", doc(3), ttl=60)
    first = table_of(dataset)
    write_json(data_dir / "d.geojson", doc(5))
    assert table_of(dataset).version == first.version


@pytest.mark.django_db
def test_the_cache_outlives_the_process_tables(make_dataset, data_dir):
    dataset = make_dataset("geojson", "d", doc(3), ttl=60)
    first = table_of(dataset)
    data.reset_process_state()  # as in a new web process
    (data_dir / "d.geojson").unlink()  # the source is not asked again
    again = table_of(dataset)
    assert (again.version, again.count) == (first.version, 3)


@pytest.mark.django_db(transaction=True)  # the refresh thread writes through its own connection
def test_expired_copy_is_served_while_one_refresh_runs(make_dataset, data_dir):
    dataset = make_dataset("geojson", "d", doc(3), ttl=0)
    first = table_of(dataset)
    write_json(data_dir / "d.geojson", doc(4))
    assert table_of(dataset).version == first.version  # stale, at once
    assert table_of(dataset).version == first.version  # no second refresh is started
    data.wait_for_refreshes()
    second = table_of(dataset)
    assert second.count == 4 and second.version != first.version


@pytest.mark.django_db
def test_ttl_from_the_geojson_overrides_the_dataset(make_dataset):
    dataset = make_dataset("geojson", "d", {**doc(1), "ttl": 5}, ttl=1000)
    table_of(dataset)
    pointer = cache.get_pointer("geojson::d")
    assert pointer.expires_at - pointer.fetched_at == pytest.approx(5)


@pytest.mark.django_db(transaction=True)
def test_failed_refresh_serves_the_last_good_copy_and_records_the_error(make_dataset, data_dir):
    dataset = make_dataset("geojson", "d", doc(3), ttl=0)
    first = table_of(dataset)
    (data_dir / "d.geojson").write_bytes(b"{not json")
    served = table_of(dataset)
    data.wait_for_refreshes()
    assert served.version == first.version
    assert table_of(dataset).version == first.version  # backoff: not asked again yet
    dataset.refresh_from_db()
    assert "SourceFormatError" in dataset.last_error
    assert dataset.last_error_at is not None
    assert dataset.version == first.version  # the cached copy was not lost


@pytest.mark.django_db
def test_failure_without_a_copy_raises(make_dataset, data_dir):
    dataset = make_dataset("geojson", "d", None)
    with pytest.raises(SourceNotFoundError):
        table_of(dataset)
    (data_dir / "d.geojson").write_bytes(b"[]")
    with pytest.raises(SourceFormatError):
        table_of(dataset)


@pytest.mark.django_db
def test_clear_drops_the_copy_and_keeps_ids(make_dataset, data_dir):
    dataset = make_dataset("geojson", "d", doc(3), ttl=60)
    table_of(dataset)
    dataset.refresh_from_db()
    assert data.clear(dataset) is True
    assert cache.get_pointer("geojson::d") is None
    dataset.refresh_from_db()
    assert dataset.version == ""
    write_json(data_dir / "d.geojson", doc(4))
    assert table_of(dataset).count == 4
    assert data.clear(dataset) is True
    assert data.clear(dataset) is False


@pytest.mark.django_db
def test_deleting_a_dataset_drops_its_cache_and_ids(make_dataset):
    from koop_app.models import FeatureIdMap

    dataset = make_dataset("geojson", "d", doc(2))
    table_of(dataset)
    dataset.refresh_from_db()
    dataset.delete()
    assert cache.get_pointer("geojson::d") is None
    assert not FeatureIdMap.objects.filter(cache_key="geojson::d").exists()


@pytest.mark.django_db
def test_pass_through_asks_the_provider_every_time(make_dataset, data_dir):
    dataset = make_dataset("geojson", "d", doc(2))
    Provider.objects.filter(name="geojson").update(cache_policy=Provider.PASS_THROUGH)
    dataset = Dataset.objects.select_related("provider").get(pk=dataset.pk)
    assert table_of(dataset).count == 2
    write_json(data_dir / "d.geojson", doc(3))
    assert table_of(dataset).count == 3
    assert cache.get_pointer("geojson::d") is None


@pytest.mark.django_db
def test_cache_outage_is_a_miss(make_dataset, monkeypatch):
    dataset = make_dataset("geojson", "d", doc(2))

    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr("koop_app.data.cache.cache.get", down)
    monkeypatch.setattr("koop_app.data.cache.cache.set", down)
    assert table_of(dataset).count == 2


@pytest.mark.django_db
def test_geojson_validation_setting_logs_problems_naming_the_dataset(make_dataset, settings,
                                                                    caplog):
    clockwise = {"type": "Polygon", "coordinates": [[[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]]]}
    dataset = make_dataset("geojson", "wound", collection([feature({}, clockwise)]))
    settings.KOOP = {**settings.KOOP, "VALIDATE_GEOJSON": True}
    table_of(dataset)
    assert "geojson/wound: 1 polygon(s) break RFC 7946's right-hand rule" in caplog.text
    caplog.clear()
    settings.KOOP = {**settings.KOOP, "VALIDATE_GEOJSON": None}
    settings.DEBUG = False
    data.refresh(dataset)
    assert "right-hand rule" not in caplog.text
    settings.DEBUG = True
    data.refresh(dataset)
    assert "right-hand rule" in caplog.text


@pytest.mark.django_db
def test_a_refresh_for_storing_only_keeps_no_hot_table(make_dataset):
    from koop_app.data.hot import hot_tables

    dataset = make_dataset("geojson", "cold", doc(3))
    stored = data.refresh(dataset, keep_hot=False)
    assert (stored.layers, stored.count) == ((), 3)
    usage = hot_tables.usage()  # nothing decoded or attached here (the file, if any, is built
    assert (usage["tables"], usage.get("attached_files", 0)) == (0, 0)  # for web processes)
    assert table_of(dataset).version == stored.version  # served later from the cache


def events(caplog, name: str) -> list:
    return [r for r in caplog.records if getattr(r, "event", None) == name]


@pytest.mark.django_db(transaction=True)
def test_fetches_and_refreshes_are_logged_as_events_with_their_trigger(make_dataset, data_dir,
                                                                       caplog):
    from koop_app.models import RefreshLog

    caplog.set_level("INFO", logger="koop_app")
    dataset = make_dataset("geojson", "d", doc(3), ttl=0)
    table_of(dataset)
    (fetched,) = events(caplog, "fetch.done")
    assert fetched.koop_fields["dataset"] == "geojson/d"
    assert fetched.koop_fields["features"] == 3
    (done,) = events(caplog, "refresh.done")
    fields = done.koop_fields
    assert (fields["trigger"], fields["features"], fields["dataset_id"]) == ("miss", 3,
                                                                              dataset.pk)
    assert fields["version"] and fields["bytes"] > 0
    assert {"duration_ms", "fetch_ms", "normalize_ms", "store_ms"} <= set(fields)

    (data_dir / "d.geojson").write_bytes(b"{not json")
    table_of(dataset)  # expired: served, refreshed in the background, which fails
    data.wait_for_refreshes()
    (queued,) = events(caplog, "refresh.queued")
    assert queued.koop_fields["runs_on"] == "thread"
    (failed,) = events(caplog, "refresh.failed")
    assert failed.koop_fields["trigger"] == "stale"
    assert failed.koop_fields["error"] == "SourceFormatError"
    assert failed.levelname == "WARNING"
    assert events(caplog, "fetch.failed")
    history = list(RefreshLog.objects.filter(dataset=dataset).values_list("trigger", "ok"))
    assert history == [("stale", False), ("miss", True)]


@pytest.mark.django_db
def test_a_new_version_loads_in_the_background_while_the_last_one_is_served(
        make_dataset, data_dir, monkeypatch, settings):
    # A worker on another host: no hot file is built beside the web process.
    settings.KOOP = {**settings.KOOP, "HOT_PREBUILD": False}
    dataset = make_dataset("geojson", "d", doc(3), ttl=600)
    first = table_of(dataset)
    write_json(data_dir / "d.geojson", doc(4))
    stored = data.refresh(dataset, keep_hot=False)  # as a worker stores it
    settings.KOOP = {**settings.KOOP, "POINTER_CHECK_SECONDS": 0}
    real_stream = served_module.stream_ipc

    def slow_stream(blob):
        time.sleep(0.6)
        return real_stream(blob)

    monkeypatch.setattr(served_module, "stream_ipc", slow_stream)
    monkeypatch.setattr(served_module, "LOAD_INLINE_BYTES", 0)  # as if it were large
    clock = time.perf_counter()
    served = [table_of(dataset).version for _ in range(3)]
    assert time.perf_counter() - clock < 0.5  # nobody waited for the load
    assert served == [first.version] * 3
    data.wait_for_refreshes()
    assert (table_of(dataset).version, table_of(dataset).count) == (stored.version, 4)


@pytest.mark.django_db
def test_a_small_new_version_is_served_by_the_request_that_finds_it(make_dataset, data_dir,
                                                                   settings):
    dataset = make_dataset("geojson", "d", doc(3), ttl=600)
    table_of(dataset)
    write_json(data_dir / "d.geojson", doc(4))
    stored = data.refresh(dataset, keep_hot=False)
    settings.KOOP = {**settings.KOOP, "POINTER_CHECK_SECONDS": 0}
    assert table_of(dataset).version == stored.version


@pytest.mark.django_db(transaction=True)
def test_a_slow_refresh_never_makes_a_request_wait(make_dataset, source_server, settings):
    settings.KOOP = {**settings.KOOP, "POINTER_CHECK_SECONDS": 0}  # see the aged copy at once
    sizes = itertools.count(2)
    url = source_server.route("/slow-refresh.geojson", delay=1.0,
                              body=lambda query: orjson.dumps(doc(next(sizes))))
    dataset = make_dataset("geojson", "slow", None, options={"source": url}, ttl=600)
    hits = source_server.hits.get("/slow-refresh.geojson", 0)
    first = table_of(dataset)  # the first fetch: the only one a request waits for
    age_copy("geojson::slow", 601)  # expired
    timings, versions = [], []
    for _ in range(6):  # over 0.9 s, while the 1 s refresh runs
        clock = time.perf_counter()
        versions.append(table_of(dataset).version)
        timings.append(time.perf_counter() - clock)
        time.sleep(0.15)
    assert max(timings) < 0.3
    assert set(versions) == {first.version}
    data.wait_for_refreshes()
    assert source_server.hits["/slow-refresh.geojson"] - hits == 2  # one refresh for all
    assert (table_of(dataset).count, first.count) == (3, 2)


@pytest.mark.django_db
def test_a_worker_refresh_builds_the_hot_file_web_processes_attach(make_dataset, monkeypatch):
    dataset = make_dataset("geojson", "d", doc(7), ttl=60)
    layers = data.refresh(dataset, keep_hot=False, trigger="command")  # as a worker does
    assert layers.layers == ()  # nothing served in the worker itself
    data.reset_process_state()  # as in a web process: no hot table of its own

    def no_decoding(blob):
        raise AssertionError("the web process decoded the blob instead of attaching the file")

    monkeypatch.setattr(served_module, "stream_ipc", no_decoding)
    table = table_of(dataset)
    assert (table.version, table.count) == (layers.version, 7) and "." in table.table_name


@pytest.mark.django_db
def test_without_prebuild_the_web_process_builds_the_hot_file(make_dataset, settings):
    settings.KOOP = {**settings.KOOP, "HOT_PREBUILD": False}
    dataset = make_dataset("geojson", "d", doc(4), ttl=60)
    layers = data.refresh(dataset, keep_hot=False, trigger="command")
    data.reset_process_state()
    table = table_of(dataset)
    assert (table.version, table.count) == (layers.version, 4)
