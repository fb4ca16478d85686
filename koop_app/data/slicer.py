"""Find a GeoJSON FeatureCollection's ``features`` array in a file without parsing the file.

    found = find_features(path)          # Slice(start, end, members) or None (not plain)
    copy_range(path, found.start, found.end, target)

The array is handed to DuckDB's JSON reader as a file of its own; the other members (type,
metadata, ttl, bbox...) are small and parsed here. The start is found by walking the top-level
members from the head; the end first by a guess (a ``]`` near the end of the file followed by
nothing but well-formed members), which DuckDB verifies when it parses the array, and otherwise
by a string- and escape-aware bracket scanner over the file in chunks (``value_end``).
Malformed files raise SourceFormatError, never something else.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from koop_app.errors import SourceFormatError

CHUNK = 16 * 1024 * 1024
HEAD = 64 * 1024
TAIL = 1024 * 1024  # the members after ``features`` are looked for this near the end
BOM = b"\xef\xbb\xbf"
_WS = b" \t\r\n"
_SCALAR_END = re.compile(rb"[\s,}\]]")
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN = (ord("["), ord("{"))
_CLOSE = (ord("]"), ord("}"))
# Byte classes for the scanner: 1 quote, 2 backslash, 3 opening, 4 closing bracket.
_KINDS = np.zeros(256, dtype=np.uint8)
_KINDS[_QUOTE], _KINDS[_BACKSLASH] = 1, 2
_KINDS[list(_OPEN)], _KINDS[list(_CLOSE)] = 3, 4


@dataclass(frozen=True)
class Slice:
    """Where the features array is (``start`` at ``[``, ``end`` just after ``]``), the rest."""

    start: int
    end: int
    members: dict[str, Any] = field(default_factory=dict)
    guessed: bool = False  # the end is a guess DuckDB's parse must confirm


def _bad(message: str) -> SourceFormatError:
    return SourceFormatError("The GeoJSON source is not valid JSON.",
                             log_message=f"invalid JSON: {message}")


def _chunks(fd: int, start: int, size: int) -> Iterator[tuple[int, bytes]]:
    offset = start
    while True:
        data = os.pread(fd, size, offset)
        if not data:
            return
        yield offset, data
        offset += len(data)


def value_end(fd: int, start: int, chunk: int = CHUNK) -> int:
    """The offset just after the array or object that opens at ``start``.

    Chunk by chunk with numpy: quotes preceded by an odd run of backslashes are escaped;
    the unescaped ones toggle "inside a string"; brackets outside strings move the depth.
    """
    in_string = False
    carried = 0  # the run of backslashes that ended the previous chunk
    depth = 0
    for offset, data in _chunks(fd, start, chunk):
        b = np.frombuffer(data, dtype=np.uint8)
        kind = _KINDS[b]
        quotes = np.flatnonzero(kind == 1)
        real = quotes
        slashes = np.flatnonzero(kind == 2)
        if len(slashes):
            # Runs of consecutive backslashes: where each ends and how long it is.
            breaks = np.flatnonzero(np.diff(slashes) != 1)
            ends = slashes[np.append(breaks, len(slashes) - 1)]
            firsts = slashes[np.insert(breaks + 1, 0, 0)]
            lengths = ends - firsts + 1 + np.where(firsts == 0, carried, 0)
            at = np.minimum(np.searchsorted(ends, quotes - 1), len(ends) - 1)
            runs = np.where(ends[at] == quotes - 1, lengths[at], 0)
            runs = np.where(quotes == 0, carried, runs)
            real = quotes[runs % 2 == 0]
            carried = int(lengths[-1]) if ends[-1] == len(b) - 1 else 0
        else:
            if len(quotes) and quotes[0] == 0 and carried % 2:
                real = quotes[1:]
            carried = 0
        brackets = np.flatnonzero(kind >= 3)
        inside = (np.searchsorted(real, brackets) % 2 == 1) ^ in_string
        brackets = brackets[~inside]
        depths = depth + np.cumsum(np.where(kind[brackets] == 3, 1, -1))
        closed = np.flatnonzero(depths == 0)
        if len(closed):
            return offset + int(brackets[closed[0]]) + 1
        depth = int(depths[-1]) if len(depths) else depth
        in_string ^= len(real) % 2 == 1
    raise _bad("the file ends inside a value")


def _read(fd: int, start: int, end: int) -> bytes:
    return os.pread(fd, end - start, start)


def find_features(path: str | Path) -> Slice | None:
    """The features array of the FeatureCollection in ``path``, or None if it is not one.

    None means the document is valid-looking JSON but not a plain FeatureCollection with a
    features array (a single Feature, a multi-layer document): the caller parses it whole.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        return _find(fd, size)
    finally:
        os.close(fd)


def _find(fd: int, size: int) -> Slice | None:
    head = _Head(fd, size)
    at = len(BOM) if head.data.startswith(BOM) else 0
    at = head.skip_ws(at)
    if head.at(at) is None:
        raise _bad("the file is empty")
    if head.at(at) != ord("{"):
        if head.at(at) == ord("["):
            return None  # an array: not a collection (the caller says so)
        raise _bad("the document does not start with an object")
    prefix_start = at
    at += 1
    # Walk the members before "features"; the values of the others are skipped.
    while True:
        at = head.skip_ws(at)
        char = head.at(at)
        if char is None:
            raise _bad("the file ends inside the top-level object")
        if char == ord("}"):
            return None  # no features member
        if char != _QUOTE:
            raise _bad(f"a member name is expected at byte {at}")
        key_start = at
        key_end = head.string_end(at)
        try:
            key = orjson.loads(head.data[key_start:key_end])
        except orjson.JSONDecodeError as exc:
            raise _bad(str(exc)) from None
        at = head.skip_ws(key_end)
        if head.at(at) != ord(":"):
            raise _bad(f"':' is expected at byte {at}")
        at = head.skip_ws(at + 1)
        char = head.at(at)
        if char is None:
            raise _bad("the file ends before a member's value")
        if key == "features":
            if char != ord("["):
                return None  # features is not an array: the caller parses and reports
            start = at
            break
        if char in _OPEN:
            at = value_end(fd, at)
        elif char == _QUOTE:
            at = head.string_end(at)
        else:
            at = head.scalar_end(at)
        at = head.skip_ws(at)
        if head.at(at) == ord(","):
            at += 1
    prefix = head.data[prefix_start:key_start]
    end, guessed = _guess_end(fd, size, start)
    if end is None:
        end, guessed = value_end(fd, start), False
    members = _members(prefix, _read(fd, end, size))
    if members.get("type") != "FeatureCollection" or "layers" in members or "tables" in members:
        return None
    return Slice(start, end, members, guessed)


class _Head:
    """The beginning of the file, read further as the walk over its members needs."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size = fd, size
        self.data = os.pread(fd, HEAD, 0)

    def _cover(self, at: int) -> bool:
        """Make sure byte ``at`` is read; False if the file is shorter."""
        while at >= len(self.data) and len(self.data) < self.size:
            self.data = os.pread(self.fd, max(2 * len(self.data), at + HEAD), 0)
        return at < len(self.data)

    def at(self, at: int) -> int | None:
        return self.data[at] if self._cover(at) else None

    def skip_ws(self, at: int) -> int:
        while (char := self.at(at)) is not None and char in _WS:
            at += 1
        return at

    def string_end(self, at: int) -> int:
        """The offset after the JSON string whose opening quote is at ``at``."""
        begin = at
        at += 1
        while True:
            quote = self.data.find(b'"', at)
            if quote < 0:
                if not self._cover(len(self.data)):
                    raise _bad("the file ends inside a string")
                continue
            run = 0
            while quote - 1 - run > begin and self.data[quote - 1 - run] == _BACKSLASH:
                run += 1
            if run % 2 == 0:
                return quote + 1
            at = quote + 1

    def scalar_end(self, at: int) -> int:
        while True:
            match = _SCALAR_END.search(self.data, at)
            if match is not None:
                return match.start()
            if not self._cover(len(self.data)):
                raise _bad("the file ends inside a value")


def _guess_end(fd: int, size: int, start: int) -> tuple[int | None, bool]:
    """The earliest ``]`` near the end after which only well-formed members follow."""
    begin = max(start + 1, size - TAIL)
    tail = _read(fd, begin, size)
    found = None
    last = len(tail.rstrip(_WS)) - 1
    at = len(tail)
    while (at := tail.rfind(b"]", 0, at)) >= 0:
        after = _skip(tail, at + 1)
        if after < len(tail) and tail[after] == ord("}"):
            if after == last:
                found = begin + at + 1
        elif after < len(tail) and tail[after] == ord(","):
            name = _skip(tail, after + 1)
            if name < len(tail) and tail[name] == _QUOTE and _is_object(b"{" + tail[name:]):
                found = begin + at + 1
    return found, found is not None


def _skip(data: bytes, at: int) -> int:
    while at < len(data) and data[at] in _WS:
        at += 1
    return at


def _is_object(text: bytes) -> bool:
    try:
        return isinstance(orjson.loads(text), dict)
    except orjson.JSONDecodeError:
        return False


def _members(prefix: bytes, suffix: bytes) -> dict[str, Any]:
    """The top-level members other than features: ``{a, b, `` + ``, c, d}`` joined."""
    head = prefix.strip(_WS).rstrip(_WS)
    head = head[:-1].rstrip(_WS) if head.endswith(b",") else head
    tail = suffix.strip(_WS)
    tail = tail[1:].lstrip(_WS) if tail.startswith(b",") else tail
    joiner = b"," if head != b"{" and tail != b"}" else b""
    try:
        members = orjson.loads(head + joiner + tail)
    except orjson.JSONDecodeError as exc:
        raise _bad(f"after the features array: {exc}") from None
    if not isinstance(members, dict):
        raise _bad("the top-level value is not an object")
    return members


def copy_range(path: str | Path, start: int, end: int, target: str | Path) -> None:
    """Copy bytes [start, end) of ``path`` to a new file ``target`` in the kernel."""
    src = os.open(path, os.O_RDONLY)
    try:
        dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            offset, left = start, end - start
            while left > 0:
                try:
                    copied = os.copy_file_range(src, dst, left, offset)
                except OSError:  # another file system: copy through user space
                    copied = _copy_plain(src, dst, offset, min(left, CHUNK))
                if copied == 0:
                    raise _bad("the file ended while it was copied")
                offset += copied
                left -= copied
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _copy_plain(src: int, dst: int, offset: int, size: int) -> int:
    data = os.pread(src, size, offset)
    os.write(dst, data)
    return len(data)
