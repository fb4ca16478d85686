"""The data cache on Redis: an outage is a miss and a log line, and Redis coming back works."""

from __future__ import annotations

import pytest

from koop_app import data
from tests.conftest import collection, feature, point, write_json


def doc(n: int) -> dict:
    return collection([feature({"n": i}, point(i, i)) for i in range(n)])


def table_of(dataset):
    return data.get_table(dataset, data.provider_request(dataset))


@pytest.mark.django_db
def test_redis_going_away_is_a_miss_not_an_error(make_dataset, data_dir, redis_server,
                                                 settings, caplog):
    settings.CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache",
                                   "LOCATION": redis_server.url,
                                   "OPTIONS": {"IGNORE_EXCEPTIONS": True,
                                               "SOCKET_CONNECT_TIMEOUT": 1}}}
    dataset = make_dataset("geojson", "d", doc(3), ttl=60)
    assert table_of(dataset).count == 3
    redis_server.stop()
    try:
        assert table_of(dataset).count == 3  # the hot table answers
        data.reset_process_state()  # a process without the hot table asks the source
        assert table_of(dataset).count == 3
        assert "redis" in caplog.text.lower() or "cache" in caplog.text.lower()
    finally:
        redis_server.start_on_same_port()
    write_json(data_dir / "d.geojson", doc(5))
    assert data.refresh(dataset).count == 5
    data.reset_process_state()
    assert table_of(dataset).count == 5  # back from Redis once it returns
