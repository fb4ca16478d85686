"""Django's file cache without compressing the cached data sets a second time.

The blobs (zstd Arrow IPC) are compressed already; FileBasedCache zlib-compresses every value
at its default level, which cost ~1.8 s for a million points and saved nothing. Values are
written as zlib "stored" blocks (level 0), pickled and deflated piece by piece into the file
rather than as two more copies of the blob: the same file format, read by the same code.
"""

from __future__ import annotations

import pickle
import zlib
from typing import Any

from django.core.cache.backends.filebased import FileBasedCache

PIECE = 16 * 1024 * 1024


class _Deflating:
    """A writable file that deflates (level 0) what is written to it into ``file``."""

    def __init__(self, file: Any) -> None:
        self.file = file
        self.deflate = zlib.compressobj(0)

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        for start in range(0, len(view), PIECE):
            self.file.write(self.deflate.compress(view[start:start + PIECE]))
        return len(view)

    def close(self) -> None:
        self.file.write(self.deflate.flush())


class FileCache(FileBasedCache):
    def _write_content(self, file: Any, timeout: Any, value: Any) -> None:
        expiry = self.get_backend_timeout(timeout)
        file.write(pickle.dumps(expiry, self.pickle_protocol))
        sink = _Deflating(file)
        pickle.Pickler(sink, self.pickle_protocol).dump(value)
        sink.close()
