"""One refresh per dataset: the cache lock across processes, the flight across threads."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import orjson
import pytest

from koop_app import data
from koop_app.data import cache
from koop_app.data.flight import CacheLock, Flight, process_is_gone, process_name
from koop_app.errors import DatasetLoadingError, SourceFormatError
from tests.conftest import collection, feature, point


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_process_of_this_host_is_gone_once_it_exited():
    assert not process_is_gone(process_name())
    assert process_is_gone(process_name(dead_pid()))
    assert not process_is_gone(f"elsewhere:{dead_pid()}")  # another machine: only expiry tells


@pytest.mark.usefixtures("any_cache")
class TestCacheLock:
    def test_one_holder_at_a_time(self):
        first, second = CacheLock("koop:lock:t1", 30), CacheLock("koop:lock:t1", 30)
        assert first.acquire() and not second.acquire()
        first.release()
        assert second.acquire()
        second.release()

    def test_a_holder_that_died_on_this_host_is_replaced_at_once(self):
        cache.acquire("koop:lock:t2", f"{process_name(dead_pid())}:cafe", 300)
        taker = CacheLock("koop:lock:t2", 30)
        assert taker.wait_released(0)
        assert taker.acquire()
        assert taker.holder() == taker.token
        taker.release()

    def test_waiting_for_a_live_holder_is_bounded(self):
        holder = CacheLock("koop:lock:t3", 30)
        assert holder.acquire()
        clock = time.monotonic()
        assert CacheLock("koop:lock:t3", 30).wait_released(0.3) is False
        assert 0.3 <= time.monotonic() - clock < 1.0
        holder.release()
        assert CacheLock("koop:lock:t3", 30).wait_released(0.3) is True


class TestFlight:
    def test_an_inline_run_answers_its_caller(self):
        flight: Flight[int] = Flight()
        assert flight.join("k", lambda: 7, wait=0, inline=True) == 7
        assert not flight.running("k")

    def test_an_error_reaches_the_caller(self):
        flight: Flight[int] = Flight()

        def fail() -> int:
            raise SourceFormatError("bad")

        with pytest.raises(SourceFormatError):
            flight.join("k", fail, wait=0, inline=True)

    def test_callers_wait_a_bounded_time_for_one_run(self):
        flight: Flight[int] = Flight()
        release, runs = threading.Event(), []

        def work() -> int:
            runs.append(1)
            release.wait(5)
            return 3

        clock = time.monotonic()
        with pytest.raises(DatasetLoadingError) as caught:
            flight.join("k", work, wait=0.2, retry_after=7)
        assert time.monotonic() - clock < 0.5
        assert caught.value.retry_after == 7 and caught.value.status == 503
        assert flight.running("k")
        release.set()
        assert flight.join("k", lambda: 99, wait=5) in (3, 99)  # the run under way, or a new one
        flight.wait(5)
        assert len(runs) == 1


THREADS = 20


@pytest.mark.django_db(transaction=True)  # the load runs in a thread with its own connection
def test_a_first_load_with_20_waiting_threads(make_dataset, source_server, settings):
    """Threads arrive over 2 s while a 1.5 s load runs; each waits at most 1 s."""
    settings.KOOP = {**settings.KOOP, "FETCH_WAIT_SECONDS": 1, "MAX_FETCH_SECONDS": 10}
    body = orjson.dumps(collection([feature({"n": i}, point(i, i)) for i in range(5)]))
    url = source_server.route_slowly("/flight20.geojson", body, 1.5)
    dataset = make_dataset("geojson", "flight20", options={"source": url})
    outcomes: list[tuple[float, float, object]] = []

    def ask() -> None:
        asked = time.monotonic()
        try:
            outcome: object = data.get_table(dataset, data.provider_request(dataset)).count
        except DatasetLoadingError as exc:
            outcome = exc
        outcomes.append((asked, time.monotonic(), outcome))

    threads = []
    for _ in range(THREADS):
        threads.append(threading.Thread(target=ask))
        threads[-1].start()
        time.sleep(2.0 / THREADS)
    for thread in threads:
        thread.join(10)
    data.wait_for_refreshes()
    assert len(outcomes) == THREADS
    assert max(answered - asked for asked, answered, _ in outcomes) < 1 + 0.5
    errors = [o for _, _, o in outcomes if isinstance(o, DatasetLoadingError)]
    served = [o for _, _, o in outcomes if o == 5]
    assert errors and served and len(errors) + len(served) == THREADS
    assert all(e.retry_after > 0 and "loading" in e.message for e in errors)
    # The late ones (arrived within 1 s of the end of the load) were served.
    first_asked = min(asked for asked, _, _ in outcomes)
    assert all(o == 5 for asked, _, o in outcomes if asked - first_asked > 1.6)
    assert source_server.hits["/flight20.geojson"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_client_told_to_retry_gets_a_geoservices_error_with_retry_after(
        make_dataset, source_server, settings, client):
    settings.KOOP = {**settings.KOOP, "FETCH_WAIT_SECONDS": 0.3}
    body = orjson.dumps(collection([feature({"n": 1}, point(0, 0))]))
    url = source_server.route_slowly("/loading.geojson", body, 1.0)
    make_dataset("geojson", "loading", options={"source": url})
    response = client.get("/geojson/rest/services/loading/FeatureServer/0/query?f=json")
    error = orjson.loads(response.content)["error"]
    assert response.status_code == 200
    assert error["code"] == 503 and error["message"] == "The dataset is loading; try again " \
                                                       "shortly."
    assert int(response["Retry-After"]) > 0
    data.wait_for_refreshes()
    answer = orjson.loads(client.get(
        "/geojson/rest/services/loading/FeatureServer/0/query?f=json").content)
    assert len(answer["features"]) == 1
    assert source_server.hits["/loading.geojson"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_refresh_shares_the_copy_of_the_one_running_elsewhere(make_dataset, source_server):
    """The worker's refresh and a web miss of the same dataset: one fetch (here, two threads)."""
    body = orjson.dumps(collection([feature({"n": 1}, point(0, 0))]))
    url = source_server.route_slowly("/shared.geojson", body, 1.0)
    dataset = make_dataset("geojson", "shared", options={"source": url})
    results = []

    def worker_refresh() -> None:
        results.append(data.refresh(dataset, keep_hot=False, trigger="admin").version)

    thread = threading.Thread(target=worker_refresh)
    thread.start()
    time.sleep(0.3)  # the "worker" holds the dataset's lock now
    table = data.get_table(dataset, data.provider_request(dataset))
    thread.join(10)
    assert results == [table.version]
    assert source_server.hits["/shared.geojson"] == 1
