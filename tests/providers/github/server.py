"""A local server that answers GitHub's REST API for repository contents, from a folder.

Built from GitHub's published reference ("REST API endpoints for repository contents",
"Rate limits for the REST API", "Best practices: conditional requests"):

    GET /repos/{owner}/{repo}/contents/{path}?ref=      a file or a folder
        Accept: application/vnd.github.raw+json     -> a file's raw bytes (folders: JSON)
        Accept: application/vnd.github+json         -> a file as JSON (base64 content up to
                                                       1 MB, "encoding": "none" above), a folder
                                                       as an array of entries
    GET /repos/{owner}/{repo}                         the repository (default_branch)

Files live under ``root/<owner>/<repo>/<ref>/``; the default branch is "main". Answers carry
an ETag (a digest of the body and media type) and x-ratelimit-* headers; If-None-Match with
the current ETag gets 304 with no body, which is not counted in ``full_answers``. Errors have
GitHub's JSON body ``{"message", "documentation_url", "status"}``.

Scripted behaviour: ``token`` (requests with another Authorization get 401 "Bad credentials";
with ``private`` also none gets 404), ``exhausted`` (403 or 429 with x-ratelimit-remaining 0),
``secondary`` (403 with retry-after), ``delay`` (seconds before answering), ``stall`` (seconds
between the headers and the body of a 200).
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

DOCS = "https://docs.github.com/rest"
INLINE_LIMIT = 1024 * 1024  # the JSON media type inlines file contents up to 1 MB
RESET_IN = 1800


def blob_sha(data: bytes) -> str:
    """A git blob id, as GitHub's "sha" of a file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeGitHub:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.token: str | None = None
        self.private = False
        self.exhausted: int | None = None
        self.secondary = False
        self.delay = 0.0
        self.stall = 0.0
        self.requests: list[dict[str, Any]] = []
        self.full_answers: Counter[str] = Counter()  # 200s with a body, per path
        self.not_modified: Counter[str] = Counter()
        self.remaining = 5000
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                try:
                    server.handle(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> FakeGitHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def write(self, path: str, data: bytes | str | Any, *, owner: str = "octo",
              repo: str = "maps", ref: str = "main") -> Path:
        """Put a file in a repository at a ref (JSON-encodes what is not bytes or text)."""
        if isinstance(data, str):
            data = data.encode()
        elif not isinstance(data, bytes):
            data = orjson.dumps(data)
        target = self.root / owner / repo / ref / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return target

    # -- answering

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        headers = {k.lower(): v for k, v in h.headers.items()}
        self.requests.append({"path": unquote(parts.path), "query": parts.query, **headers})
        if self.delay:
            time.sleep(self.delay)
        auth = headers.get("authorization")
        if auth is not None and (self.token is None or auth not in (
                f"Bearer {self.token}", f"token {self.token}")):
            return self.error(h, 401, "Bad credentials")
        if self.exhausted:
            return self.error(h, self.exhausted, "API rate limit exceeded for 127.0.0.1. "
                              "(But here's the good news: Authenticated requests get a higher "
                              "rate limit.)", remaining=0)
        if self.secondary:
            return self.error(h, 403, "You have exceeded a secondary rate limit.",
                              extra={"retry-after": "60"})
        if self.private and auth is None:
            return self.error(h, 404, "Not Found")
        segments = [unquote(s) for s in parts.path.split("/")]
        # ['', 'repos', owner, repo, 'contents', *path]
        if len(segments) < 4 or segments[1] != "repos":
            return self.error(h, 404, "Not Found")
        owner, repo = segments[2], segments[3]
        if not (self.root / owner / repo).is_dir():
            return self.error(h, 404, "Not Found")
        if len(segments) == 4:
            return self.answer(h, parts.path, orjson.dumps(
                {"name": repo, "full_name": f"{owner}/{repo}", "default_branch": "main",
                 "private": self.private}), "application/json; charset=utf-8")
        if segments[4] != "contents":
            return self.error(h, 404, "Not Found")
        ref = (parse_qs(parts.query).get("ref") or ["main"])[0]
        base = self.root / owner / repo / ref
        if not base.is_dir():
            return self.error(h, 404, f"No commit found for the ref {ref}")
        path = "/".join(s for s in segments[5:] if s)
        target = (base / path).resolve()
        if not target.is_relative_to(base.resolve()) or not target.exists():
            return self.error(h, 404, "Not Found")
        raw = "raw" in headers.get("accept", "")
        if target.is_dir():
            entries = [self.entry(owner, repo, ref, base, child)
                       for child in sorted(target.iterdir())]
            return self.answer(h, parts.path, orjson.dumps(entries),
                               "application/json; charset=utf-8")
        data = target.read_bytes()
        if raw:
            return self.answer(h, parts.path, data, "application/vnd.github.raw+json; "
                               "charset=utf-8")
        item = self.entry(owner, repo, ref, base, target)
        if len(data) <= INLINE_LIMIT:
            item |= {"encoding": "base64", "content": base64.encodebytes(data).decode()}
        else:
            item |= {"encoding": "none", "content": ""}
        return self.answer(h, parts.path, orjson.dumps(item), "application/json; charset=utf-8")

    def entry(self, owner: str, repo: str, ref: str, base: Path, child: Path) -> dict[str, Any]:
        rel = child.relative_to(base).as_posix()
        api = f"{self.url}/repos/{owner}/{repo}/contents/{rel}?ref={ref}"
        if child.is_dir():
            digest = hashlib.sha1("".join(
                f"{p.relative_to(child)}{blob_sha(p.read_bytes())}"
                for p in sorted(child.rglob("*")) if p.is_file()).encode()).hexdigest()
            return {"type": "dir", "name": child.name, "path": rel, "sha": digest, "size": 0,
                    "url": api, "download_url": None}
        data = child.read_bytes()
        return {"type": "file", "name": child.name, "path": rel, "sha": blob_sha(data),
                "size": len(data), "url": api,
                "download_url": f"{self.url}/raw/{owner}/{repo}/{ref}/{rel}"}

    def rate_headers(self, remaining: int | None = None) -> dict[str, str]:
        left = self.remaining if remaining is None else remaining
        return {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": str(left),
                "x-ratelimit-used": str(5000 - left), "x-ratelimit-resource": "core",
                "x-ratelimit-reset": str(int(time.time()) + RESET_IN)}

    def answer(self, h: BaseHTTPRequestHandler, path: str, body: bytes,
               content_type: str) -> None:
        accept = h.headers.get("Accept", "")
        etag = f'"{hashlib.sha256(body + accept.encode()).hexdigest()[:40]}"'
        if h.headers.get("If-None-Match") == etag:
            self.not_modified[unquote(path)] += 1  # not counted against the rate limit
            self.send(h, 304, b"", None, {"ETag": etag, **self.rate_headers()})
            return
        self.remaining -= 1
        self.full_answers[unquote(path)] += 1
        self.send(h, 200, body, content_type, {"ETag": etag, **self.rate_headers()},
                  stall=self.stall)

    def error(self, h: BaseHTTPRequestHandler, status: int, message: str, *,
              remaining: int | None = None, extra: dict[str, str] | None = None) -> None:
        body = orjson.dumps({"message": message, "documentation_url": DOCS,
                             "status": str(status)})
        self.send(h, status, body, "application/json; charset=utf-8",
                  {**self.rate_headers(remaining), **(extra or {})})

    @staticmethod
    def send(h: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str | None,
             headers: dict[str, str], stall: float = 0.0) -> None:
        h.send_response(status)
        if content_type:
            h.send_header("Content-Type", content_type)
        for key, value in headers.items():
            h.send_header(key, value)
        if status != 304:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if stall:
            h.wfile.flush()
            time.sleep(stall)
        if status != 304:
            h.wfile.write(body)
