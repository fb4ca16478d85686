"""GitHub's REST API, as this provider uses it: repository contents, raw, conditionally.

    client = GitHubClient(api_url, token)
    answer = client.contents(repository, "data/parks.geojson", etag=None, sink=file)
    answer.status (200 or 304), answer.etag, answer.listing (a folder's entries) or the
    file's bytes in ``sink``

One endpoint does it all (docs: "REST API endpoints for repository contents"):
``GET /repos/{owner}/{repo}/contents/{path}?ref=`` with ``Accept:
application/vnd.github.raw+json`` answers a file's raw bytes (up to 100 MB, where the JSON form
stops inlining at 1 MB) and a folder's entries as a JSON array. Every call goes through
``koop_app.net`` (fetch policy, size and time limits); the token goes in ``Authorization:
Bearer`` and nowhere else (not in URLs, messages or logs). ``If-None-Match`` with the ETag of
the last answer gets a 304, which GitHub does not count against the rate limit.

GitHub's refusals become clear errors: 401 (bad token), 403/429 with
``x-ratelimit-remaining: 0`` (the primary rate limit, with the reset time from
``x-ratelimit-reset``), 403/429 with ``retry-after`` (a secondary limit), other 403s (no
access), 404 (no such repository, ref or path, or a private repository the token cannot read).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import urlencode

import orjson

from koop_app import net
from koop_app.errors import (
    SourceAuthError,
    SourceError,
    SourceNotFoundError,
    SourceRateLimitedError,
    SourceTooLargeError,
)

from .names import Repository

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"  # the X-GitHub-Api-Version this client is written against
RAW = "application/vnd.github.raw+json"
# Statuses read here rather than turned into generic errors by koop_app.net.
READ_HERE = frozenset({304, 401, 403, 404, 409, 422, 429, 451})
# A refusal's JSON body is read for GitHub's message; bodies past this are not error bodies.
ERROR_BODY_BYTES = 64 * 1024
ENTRY_TYPES = {"file", "dir", "symlink", "submodule"}
CSV_SUFFIXES = (".csv", ".tsv")
JSON_SUFFIXES = (".geojson", ".json", ".topojson")
DATA_SUFFIXES = CSV_SUFFIXES + JSON_SUFFIXES


@dataclass(frozen=True)
class Entry:
    """One item of a folder listing."""

    name: str
    path: str
    type: str  # file, dir, symlink, submodule
    size: int
    sha: str

    @property
    def is_data_file(self) -> bool:
        """A file this provider reads (by its suffix); folders and others are not."""
        return self.type == "file" and self.name.lower().endswith(DATA_SUFFIXES)


@dataclass(frozen=True)
class Answer:
    """A contents answer: 304 (unchanged), or 200 with a folder's entries or a file's bytes."""

    status: int
    etag: str | None
    listing: tuple[Entry, ...] | None = None  # a folder
    body: bytes | None = None  # a file, when no sink was given

    @property
    def unchanged(self) -> bool:
        return self.status == 304


class GitHubClient:
    def __init__(self, api_url: str, token: str | None) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token or None

    def headers(self, etag: str | None = None) -> dict[str, str]:
        headers = {"Accept": RAW, "X-GitHub-Api-Version": API_VERSION}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if etag:
            headers["If-None-Match"] = etag
        return headers

    def contents(self, repository: Repository, path: str, *, etag: str | None = None,
                 sink: IO[bytes] | None = None) -> Answer:
        """The file or folder at ``path`` (raw bytes into ``sink`` when given), or a 304."""
        query = {"ref": repository.ref} if repository.ref else {}
        url = f"{self.api_url}{repository.api_path(path)}"
        if query:
            url += "?" + urlencode(query)
        start = sink.tell() if sink is not None else 0
        answer = net.request("GET", url, headers=self.headers(etag), accept=READ_HERE,
                             sink=sink)
        if answer.status != 200 and answer.status != 304:
            body = answer.body
            if sink is not None:  # the refusal's body went to the sink: read it back
                sink.seek(start)
                body = sink.read(ERROR_BODY_BYTES)
                sink.seek(start)
                sink.truncate()
            raise refusal(answer.status, answer.headers, body, repository, path)
        tag = answer.headers.get("etag")
        if answer.status == 304:
            return Answer(304, tag or etag)
        if sink is None:
            listing = _listing(answer.headers, answer.body)
            return Answer(200, tag, listing, None if listing is not None else answer.body)
        sink.flush()
        return Answer(200, tag, _listing_in(answer.headers, sink, start))


def _listing(headers: Mapping[str, str], body: bytes) -> tuple[Entry, ...] | None:
    """A folder's entries when ``body`` is a listing (GitHub answers folders in JSON even
    to the raw media type); None for a file's raw bytes."""
    if not body.lstrip()[:1] == b"[" or "json" not in headers.get("content-type", ""):
        return None
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not all(isinstance(i, dict) and i.get("type") in ENTRY_TYPES and "path" in i
               and "sha" in i for i in items):
        return None
    return tuple(Entry(str(i.get("name") or i["path"].rsplit("/", 1)[-1]), str(i["path"]),
                       str(i["type"]), int(i.get("size") or 0), str(i["sha"])) for i in items)


def _listing_in(headers: Mapping[str, str], sink: IO[bytes], start: int
                ) -> tuple[Entry, ...] | None:
    """``_listing`` of what was written to ``sink``; small listings only (a file otherwise)."""
    if "json" not in headers.get("content-type", ""):
        return None
    end = sink.tell()
    sink.seek(start)
    head = sink.read(64).lstrip()
    if not head.startswith(b"["):
        sink.seek(end)
        return None
    sink.seek(start)
    listing = _listing(headers, sink.read())
    sink.seek(end)
    return listing


def github_message(body: bytes | None) -> str:
    """GitHub's own words from an error body (``{"message": ...}``), shortened; "" if none."""
    try:
        data: Any = orjson.loads(body or b"")
    except orjson.JSONDecodeError:
        return ""
    message = data.get("message") if isinstance(data, dict) else None
    return str(message)[:200] if message else ""


def refusal(status: int, headers: Mapping[str, str], body: bytes | None,
            repository: Repository, path: str) -> SourceError | SourceNotFoundError:
    """The error for a status GitHub refused with; never holds the token or the API URL."""
    said = github_message(body)
    kind, message = _refusal_kind(status, headers, said, repository, path)
    log = f"{message} [GitHub {repository.label}:{path or '/'}: HTTP {status}" + (
        f": {said}]" if said else "]")
    return kind(message, details=[f"GitHub: {said}"] if said else [], log_message=log)


def _refusal_kind(status: int, headers: Mapping[str, str], said: str, repository: Repository,
                  path: str) -> tuple[type[SourceError] | type[SourceNotFoundError], str]:
    remaining = (headers.get("x-ratelimit-remaining") or "").strip()
    wait = (headers.get("retry-after") or "").strip()
    if status in (403, 429) and remaining == "0":
        return SourceRateLimitedError, rate_limit_message(headers)
    if status in (403, 429) and wait.isdigit():
        return SourceRateLimitedError, (f"GitHub's secondary rate limit was reached; retry "
                                        f"after {int(wait)} seconds.")
    if status == 429:
        return SourceRateLimitedError, "GitHub is limiting our requests (HTTP 429)."
    if status == 401:
        return SourceAuthError, ("GitHub refused the access token (HTTP 401): it is wrong, "
                                 "expired or revoked; set a valid one in the dataset's options.")
    if status == 403 and "too large" in said.lower():
        return SourceTooLargeError, (f"{path!r} is larger than GitHub serves through its API "
                                     "(100 MB).")
    if status == 403:
        return SourceAuthError, (f"GitHub refused access to {repository.label} (HTTP 403): "
                                 "the token lacks the permission to read its contents.")
    if status == 404:
        ref = f"ref {repository.ref!r}" if repository.ref else "the default branch"
        return SourceNotFoundError, (
            f"GitHub has no path {path or '/'!r} at {ref} of {repository.full_name} (or the "
            "repository is private and the token cannot read it).")
    return SourceError, (f"GitHub answered HTTP {status} for {repository.label}:"
                         f"{path or '/'}.")


def rate_limit_message(headers: Mapping[str, str]) -> str:
    """"GitHub's API rate limit (60 requests an hour) is used up; it resets at ..."."""
    limit = (headers.get("x-ratelimit-limit") or "").strip()
    reset = (headers.get("x-ratelimit-reset") or "").strip()
    text = "GitHub's API rate limit"
    if limit.isdigit():
        text += f" ({limit} requests an hour)"
    text += " is used up"
    if reset.isdigit():
        at = datetime.fromtimestamp(int(reset), UTC)
        minutes = max(0, round((at - datetime.now(UTC)).total_seconds() / 60))
        text += f"; it resets at {at:%Y-%m-%d %H:%M:%S} UTC (in about {minutes} minutes)"
    return text + ". A token in the dataset's options raises the limit."
