"""Django's file cache without compressing the cached data sets a second time.

The blobs (zstd Arrow IPC) are compressed already; FileBasedCache zlib-compresses every value
at its default level, which cost ~1.8 s for a million points and saved nothing. Values are
written as zlib "stored" blocks (level 0): the same file format, read by the same code.
"""

from __future__ import annotations

import pickle
import zlib
from typing import Any

from django.core.cache.backends.filebased import FileBasedCache


class FileCache(FileBasedCache):
    def _write_content(self, file: Any, timeout: Any, value: Any) -> None:
        expiry = self.get_backend_timeout(timeout)
        file.write(pickle.dumps(expiry, self.pickle_protocol))
        file.write(zlib.compress(pickle.dumps(value, self.pickle_protocol), 0))
