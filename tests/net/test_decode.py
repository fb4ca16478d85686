"""Content-Encoding decoding in bounded pieces: correct output, no bomb, clear failures."""

from __future__ import annotations

import gzip
import os
import zlib

import pytest

from koop_app.net.decode import CHUNK, DecodeError, content_decoder

DATA = os.urandom(100_000) + b"a" * 500_000


def decode(encoding: str | None, raw: bytes, step: int = 7001) -> bytes:
    decoder = content_decoder(encoding)
    out = bytearray()
    for start in range(0, len(raw), step):
        for piece in decoder.feed(raw[start:start + step]):
            assert len(piece) <= CHUNK
            out += piece
    decoder.finish()
    return bytes(out)


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(("encoding", "encode"), [
    (None, lambda d: d), ("identity", lambda d: d), ("gzip", gzip.compress),
    ("x-gzip", gzip.compress), ("deflate", zlib.compress), ("deflate", raw_deflate),
    ("gzip, deflate", lambda d: zlib.compress(gzip.compress(d))),
    ("GZIP", lambda d: gzip.compress(d[:1000]) + gzip.compress(d[1000:])),  # two members
])
def test_round_trip(encoding, encode):
    assert decode(encoding, encode(DATA)) == DATA


def test_a_bomb_comes_out_in_small_pieces():
    bomb = gzip.compress(gzip.compress(b"\0" * 20_000_000))  # 20 MB in a few hundred bytes
    decoder = content_decoder("gzip, gzip")
    pieces = decoder.feed(bomb)
    first = next(pieces)
    assert len(first) <= CHUNK and len(bomb) < 1000  # the caller can stop here


@pytest.mark.parametrize(("encoding", "raw"), [
    ("gzip", gzip.compress(DATA)[:-50]), ("gzip", b"not gzip at all"), ("br", b"x"),
    ("deflate", b"\xff\xff\xff\xff"),
])
def test_broken_or_unknown(encoding, raw):
    with pytest.raises(DecodeError):
        decode(encoding, raw)


def test_trailing_bytes_after_gzip_are_ignored():
    assert decode("gzip", gzip.compress(b"ok") + b"junk") == b"ok"
