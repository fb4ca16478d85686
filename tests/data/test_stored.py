"""The stored copies as a process sees them: pointers read again at most every interval."""

from __future__ import annotations

import pytest

from koop_app.data import cache
from koop_app.data.cache import Pointer
from koop_app.data.stored import StoredCopies


def pointer(version: str) -> Pointer:
    return Pointer("k", version, 1.0, 2.0, ())


@pytest.mark.usefixtures("any_cache")
def test_a_pointer_is_read_again_after_the_interval(settings):
    copies = StoredCopies()
    cache.store(pointer("a"), {})
    assert copies.recent("k").version == "a"
    cache.store(pointer("b"), {})
    assert copies.recent("k").version == "a"  # within POINTER_CHECK_SECONDS
    assert copies.current("k").version == "b"
    settings.KOOP = {**settings.KOOP, "POINTER_CHECK_SECONDS": 0}
    cache.store(pointer("c"), {})
    assert copies.recent("k").version == "c"


@pytest.mark.usefixtures("any_cache")
def test_hits_reach_the_shared_count_with_the_next_read():
    copies = StoredCopies()
    for _ in range(3):
        copies.hit("k")
    assert cache.counts("k").get("hits", 0) == 0
    copies.current("k")
    assert cache.counts("k")["hits"] == 3
    copies.hit("k")
    copies.clear()
    assert cache.counts("k")["hits"] == 4
