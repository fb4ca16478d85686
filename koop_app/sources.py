"""Reading a provider's source: an http(s) URL or a file under KOOP['DATA_DIR'].

    raw = read_source(options["source"])      # bytes, or a ProviderError subclass

Remote reads use connect/read timeouts and stop at KOOP['MAX_DOWNLOAD_BYTES']; local paths are
resolved (symlinks included) and refused when they leave the data directory.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

from koop_app.conf import koop_settings
from koop_app.errors import (
    SourceAccessError,
    SourceError,
    SourceNotFoundError,
    SourceTimeoutError,
    SourceTooLargeError,
)

CHUNK = 1 << 16


def is_url(location: str) -> bool:
    return urlsplit(location).scheme.lower() in ("http", "https")


def check_location(location: str) -> str:
    """Validate a source option value; raise ValueError with a message for the admin."""
    location = location.strip()
    if is_url(location):
        if not urlsplit(location).hostname:
            raise ValueError("the URL has no host")
        return location
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
        return _download(location, headers or {})
    path = local_path(location)
    limit = int(koop_settings.MAX_DOWNLOAD_BYTES)
    try:
        if path.stat().st_size > limit:
            raise SourceTooLargeError(log_message=f"{path} is larger than {limit} bytes")
        return path.read_bytes()
    except FileNotFoundError:
        raise SourceNotFoundError("The data file does not exist.",
                                  log_message=f"missing file {path}") from None
    except IsADirectoryError:
        raise SourceNotFoundError("The data file is a directory.",
                                  log_message=f"{path} is a directory") from None
    except PermissionError:
        raise SourceAccessError("The data file cannot be read.",
                                log_message=f"permission denied on {path}") from None


def _download(url: str, headers: dict[str, str]) -> bytes:
    limit = int(koop_settings.MAX_DOWNLOAD_BYTES)
    timeout = (float(koop_settings.CONNECT_TIMEOUT), float(koop_settings.READ_TIMEOUT))
    try:
        with requests.get(url, headers=headers, timeout=timeout, stream=True,
                          allow_redirects=True) as response:
            if response.status_code == 404:
                raise SourceNotFoundError(log_message=f"GET {url}: 404")
            if response.status_code >= 400:
                raise SourceError(
                    f"The data source answered HTTP {response.status_code}.",
                    log_message=f"GET {url}: HTTP {response.status_code}",
                )
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise SourceTooLargeError(log_message=f"GET {url}: Content-Length {declared}")
            body = bytearray()
            # A server that drips bytes never trips the read timeout: bound the whole body too.
            deadline = time.monotonic() + timeout[0] + timeout[1]
            for chunk in response.iter_content(CHUNK):
                body += chunk
                if time.monotonic() > deadline:
                    raise SourceTimeoutError(log_message=f"GET {url}: body not received in time")
                if len(body) > limit:
                    raise SourceTooLargeError(log_message=f"GET {url}: more than {limit} bytes")
            return bytes(body)
    except requests.Timeout as exc:
        raise SourceTimeoutError(log_message=f"GET {url}: {exc}") from exc
    except requests.RequestException as exc:
        raise SourceError("The data source could not be reached.",
                          log_message=f"GET {url}: {exc}") from exc
