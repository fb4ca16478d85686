"""Content-Encoding decoders that never produce more than a chunk at a time (no zip bombs).

    decoder = content_decoder("gzip")
    for piece in decoder.feed(raw):   # each piece at most CHUNK bytes
        ...
    decoder.finish()                  # raises DecodeError on a truncated stream

A few kilobytes of gzip can expand to gigabytes; decompressing with ``max_length`` and counting
what comes out lets the caller stop at its byte limit before the memory is spent.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

CHUNK = 1 << 16
# zlib window bits: gzip wrapper, zlib wrapper, raw deflate (what some servers call "deflate").
_GZIP, _ZLIB, _RAW = 16 + zlib.MAX_WBITS, zlib.MAX_WBITS, -zlib.MAX_WBITS


class DecodeError(ValueError):
    """The encoded body is corrupt, truncated or uses an encoding we did not ask for."""


class Identity:
    """No encoding."""

    def feed(self, data: bytes) -> Iterator[bytes]:
        for start in range(0, len(data), CHUNK):
            yield data[start:start + CHUNK]

    def finish(self) -> None:
        pass


class Inflate:
    """gzip (several members allowed, as RFC 1952 permits) or deflate (zlib or raw)."""

    def __init__(self, gzip: bool) -> None:
        self.gzip = gzip
        self._wbits = _GZIP if gzip else _ZLIB
        self._zlib = zlib.decompressobj(self._wbits)
        self._started = False  # bytes went in: no more guessing between zlib and raw deflate
        self._in_member = False  # inside a stream (gzip member) that has not ended yet
        self._members = 0  # streams (gzip members) that ended
        self._done = False  # later bytes are ignored, as browsers do

    def feed(self, data: bytes) -> Iterator[bytes]:
        pending = b"" if self._done else data
        while pending:
            try:
                out = self._zlib.decompress(pending, CHUNK)
            except zlib.error as exc:
                if self._members:
                    self._done = True  # trailing garbage after a complete gzip member
                    return
                if self._started or self._wbits != _ZLIB:
                    raise DecodeError(f"corrupt {self._name} stream: {exc}") from None
                self._wbits, self._zlib = _RAW, zlib.decompressobj(_RAW)
                continue
            self._started = self._in_member = True
            if out:
                yield out
            pending = self._zlib.unconsumed_tail
            if self._zlib.eof:
                self._members += 1
                self._in_member = False
                pending = self._zlib.unused_data
                if not self.gzip:
                    self._done = True
                    return
                self._zlib = zlib.decompressobj(self._wbits)  # a next member may follow
            elif not pending and len(out) == CHUNK:
                yield from self._drain()

    def _drain(self) -> Iterator[bytes]:
        """Output zlib still holds after all input was consumed (it stopped at max_length)."""
        while not self._zlib.eof:
            out = self._zlib.decompress(b"", CHUNK)
            if not out:
                return
            yield out

    def finish(self) -> None:
        if self._in_member:
            raise DecodeError(f"truncated {self._name} stream")

    @property
    def _name(self) -> str:
        return "gzip" if self.gzip else "deflate"


class Chain:
    """Several encodings, applied in the order listed, so removed in reverse (RFC 9110 8.4)."""

    def __init__(self, decoders: list[Identity | Inflate]) -> None:
        self.decoders = decoders

    def feed(self, data: bytes) -> Iterator[bytes]:
        pieces: Iterator[bytes] = iter([data])
        for decoder in self.decoders:
            pieces = _through(decoder, pieces)
        yield from pieces

    def finish(self) -> None:
        for decoder in self.decoders:
            decoder.finish()


def _through(decoder: Identity | Inflate, pieces: Iterator[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield from decoder.feed(piece)


def content_decoder(header: str | None) -> Chain:
    """The decoder for a Content-Encoding header value, or DecodeError."""
    names = [name.strip().lower() for name in (header or "").split(",") if name.strip()]
    decoders: list[Identity | Inflate] = []
    for name in reversed(names):
        if name in ("gzip", "x-gzip"):
            decoders.append(Inflate(gzip=True))
        elif name == "deflate":
            decoders.append(Inflate(gzip=False))
        elif name != "identity":
            raise DecodeError(f"unsupported Content-Encoding {name!r}")
    return Chain(decoders or [Identity()])
