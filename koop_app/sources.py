"""Reading a provider's source: an http(s) URL or a file under KOOP['DATA_DIR'].

    raw = read_source(options["source"])      # bytes, or a ProviderError subclass
    path, temporary = source_file(options["source"])   # a file to read in a stream

Remote reads go through ``koop_app.net``: the address policy, redirects checked hop by hop,
timeouts and KOOP['MAX_DOWNLOAD_BYTES']. Local paths are resolved (symlinks included) and
refused when they leave the data directory.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from koop_app.conf import koop_settings
from koop_app.errors import SourceAccessError, SourceNotFoundError, SourceTooLargeError
from koop_app.net import check_url, get, get_to_file


def is_url(location: str) -> bool:
    scheme, colon, _ = location.partition(":")
    return bool(colon) and scheme.strip().lower() in ("http", "https")


def check_location(location: str) -> str:
    """Validate a source option value; raise ValueError with a message for the admin."""
    location = location.strip()
    if is_url(location):
        return check_url(location)
    if "://" in location:
        raise ValueError("only http(s) URLs and files under the data directory are allowed")
    try:
        local_path(location)
    except SourceAccessError as exc:
        raise ValueError(exc.message) from None
    return location


def local_path(location: str) -> Path:
    """The resolved path of ``location`` inside the data directory, or SourceAccessError."""
    base_setting = koop_settings.DATA_DIR
    if not base_setting:
        raise SourceAccessError("Local files are disabled: KOOP['DATA_DIR'] is not set.")
    base = Path(base_setting).resolve()
    path = (base / location).resolve()
    if path != base and base not in path.parents:
        raise SourceAccessError("The path is outside the data directory.",
                                log_message=f"refused path {location!r} outside {base}")
    return path


def read_source(location: str, *, headers: dict[str, str] | None = None) -> bytes:
    """The bytes at ``location`` (URL or data-directory path)."""
    if is_url(location):
        return get(location, headers=headers).body
    path = _readable(local_path(location), int(koop_settings.MAX_DOWNLOAD_BYTES), location)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceAccessError(f"The data file {location!r} cannot be read.",
                                log_message=f"reading {path}: {exc}") from None


def source_file(location: str, *, headers: dict[str, str] | None = None) -> tuple[Path, bool]:
    """(path, temporary): the data-directory file itself, or a URL downloaded to a temporary
    file in a stream (the caller deletes it). The same checks as read_source; a local file is
    not held by KOOP['MAX_DOWNLOAD_BYTES'] (it is read in a stream, not into memory)."""
    if not is_url(location):
        return _readable(local_path(location), None, location), False
    handle = tempfile.NamedTemporaryFile(prefix="koop-source-", delete=False)
    try:
        with handle:
            get_to_file(location, handle, headers=headers)
    except BaseException:
        os.unlink(handle.name)
        raise
    return Path(handle.name), True


def _readable(path: Path, limit: int | None, location: str) -> Path:
    """``path`` if it is a readable file of at most ``limit`` bytes, else why not.

    Messages name the location as registered (relative to the data folder: nothing about the
    server's layout reaches clients); the log and the admin also get the absolute path.
    """
    try:
        if limit is not None and path.stat().st_size > limit:
            raise SourceTooLargeError(log_message=f"{path} is larger than {limit} bytes")
        with path.open("rb"):
            pass
    except FileNotFoundError:
        raise SourceNotFoundError(f"The data file {location!r} does not exist.",
                                  log_message=f"The data file {location!r} does not exist "
                                              f"(looked for {path}).") from None
    except IsADirectoryError:
        raise SourceNotFoundError(f"The data file {location!r} is a directory.",
                                  log_message=f"The data file {location!r} is a directory "
                                              f"({path}).") from None
    except PermissionError:
        raise SourceAccessError(f"The data file {location!r} cannot be read.",
                                log_message=f"The data file {location!r} cannot be read: "
                                            f"permission denied on {path}.") from None
    return path
