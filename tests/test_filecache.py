"""The file cache stores values as Django's does, without compressing them again."""

from __future__ import annotations

import os

from koop_app.filecache import FileCache


def test_values_round_trip_and_are_not_compressed_again(tmp_path):
    cache = FileCache(str(tmp_path), {})
    blob = os.urandom(1_000_000)  # like a zstd blob: nothing left to compress
    cache.set("blob", blob, timeout=None)
    cache.set("pointer", {"version": "v1"})
    assert cache.get("blob") == blob
    assert cache.get("pointer") == {"version": "v1"}
    (written,) = [p for p in tmp_path.iterdir() if p.stat().st_size > 1_000_000]
    assert written.stat().st_size < 1_001_000  # stored, not deflated (and not grown)
