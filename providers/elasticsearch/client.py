"""One configured Elasticsearch / OpenSearch cluster, spoken to through ``koop_app.net``.

The cluster is ``KOOP["CONNECTIONS"]["elasticsearch"][<host>]``::

    {"url": "https://es.internal:9200",            # or "urls": [...] (tried in order)
     "api_key": "...",                             # or "username" + "password" (Basic)
     "indices": ["logs-*", "parcels"],             # the indices/aliases/patterns datasets may name
     "timeout": 20}                                # seconds the cluster may spend on a search

Every answer that is not 2xx is read here: Elasticsearch's error body
``{"error": {"type", "reason", "root_cause": [...]}, "status"}`` becomes one of our errors
with the reason (never the URL nor a credential) in the client's message.
"""

from __future__ import annotations

import base64
import fnmatch
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from koop_app import net
from koop_app.connections import connection, redact_url
from koop_app.errors import (
    BadRequestError,
    KoopError,
    NotFoundError,
    SourceAuthError,
    SourceConnectError,
    SourceError,
    SourceFormatError,
    SourceNotFoundError,
    SourceRateLimitedError,
    SourceTimeoutError,
)

logger = logging.getLogger(__name__)

PROVIDER = "elasticsearch"
# Statuses whose body we read ourselves: Elasticsearch explains them in its error JSON.
READ_STATUSES = frozenset({400, 401, 403, 404, 408, 409, 413, 429, 500, 502, 503, 504})


class IndexNotFoundError(NotFoundError):
    """The dataset's index (or alias, or pattern) does not exist on the cluster."""

    default_message = "The Elasticsearch index does not exist."


class IndexNotAllowedError(NotFoundError):
    """The connection's ``indices`` list does not allow the dataset's index."""

    default_message = "This index is not served from this cluster."


class SourceQueryError(BadRequestError):
    """The cluster refused the search as malformed (400): the reason is safe to show."""


@dataclass(frozen=True)
class Cluster:
    """A cluster's base URLs, its auth header and what it allows."""

    name: str
    urls: tuple[str, ...]
    headers: Mapping[str, str]
    indices: tuple[str, ...] | None
    timeout: float | None

    @classmethod
    def named(cls, name: str | None) -> Cluster:
        """The cluster ``name`` of KOOP["CONNECTIONS"]["elasticsearch"] (404 when unknown)."""
        settings = connection(PROVIDER, name)
        urls = settings.get("urls") or [settings.get("url")]
        if isinstance(urls, str):
            urls = [urls]
        urls = tuple(str(url).rstrip("/") for url in urls if url)
        if not urls:
            raise KoopError("The Elasticsearch connection is misconfigured.",
                            log_message=f"KOOP['CONNECTIONS']['elasticsearch'][{name!r}] has "
                                        "no url or urls")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if settings.get("api_key"):
            headers["Authorization"] = f"ApiKey {settings['api_key']}"
        elif settings.get("username"):
            pair = f"{settings['username']}:{settings.get('password') or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        indices = settings.get("indices")
        if isinstance(indices, str):
            indices = [part.strip() for part in indices.split(",") if part.strip()]
        timeout = settings.get("timeout")
        return cls(str(name), urls, headers, tuple(indices) if indices else None,
                   float(timeout) if timeout else None)

    def check_index(self, index: str) -> str:
        """``index`` if this cluster may serve it: a name, alias or pattern, never a path."""
        if not index or any(c in index for c in '/\\?#" <>|') or index.startswith(("_", "-")):
            raise IndexNotFoundError(details=[f"{index!r} is not an index name"])
        if self.indices is not None and not any(
                fnmatch.fnmatchcase(part, allowed) for part in index.split(",")
                for allowed in self.indices):
            raise IndexNotAllowedError(log_message=f"elasticsearch {self.name}: index {index!r} "
                                                   f"is not in the connection's indices")
        return index

    def call(self, method: str, index: str, endpoint: str, body: Any = None,
             params: str = "") -> dict[str, Any]:
        """``method /<index>/<endpoint>`` with a JSON ``body``: the answer's JSON, or an error."""
        path = f"/{quote(index, safe=',*')}/{endpoint}" + (f"?{params}" if params else "")
        if endpoint == "_search" and self.timeout and isinstance(body, dict):
            # The cluster stops searching at the limit and says timed_out (read in _read).
            body = {**body, "timeout": f"{int(self.timeout * 1000)}ms"}
        payload = None if body is None else orjson.dumps(body)
        failure: KoopError | None = None
        for base in self.urls:
            try:
                answer = net.request(method, base + path, headers=self.headers, body=payload,
                                     accept=READ_STATUSES)
            except SourceConnectError as exc:  # another node may answer
                failure = exc
                continue
            return self._read(answer, index, f"{method} {redact_url(base)}{path}")
        assert failure is not None
        raise failure

    def _read(self, answer: net.Response, index: str, where: str) -> dict[str, Any]:
        try:
            data = orjson.loads(answer.body) if answer.body else {}
        except orjson.JSONDecodeError:
            data = None
        if 200 <= answer.status < 300:
            if not isinstance(data, dict):
                raise SourceFormatError("The Elasticsearch cluster did not answer JSON.",
                                        log_message=f"{where}: HTTP {answer.status}, not JSON")
            if data.get("timed_out") is True:  # partial hits: never served as the answer
                raise SourceTimeoutError("The Elasticsearch search timed out.",
                                         log_message=f"{where}: timed_out")
            return data
        raise error_of(answer.status, data, index, where)


def error_of(status: int, data: Any, index: str, where: str) -> KoopError:
    """Our error for an Elasticsearch error answer (see the module doc)."""
    error = data.get("error") if isinstance(data, dict) else None
    kind, reason = "", ""
    if isinstance(error, dict):
        causes = error.get("root_cause") or []
        first = causes[0] if causes and isinstance(causes[0], dict) else {}
        # The root cause names the real problem ("Result window is too large ...").
        kind = str(first.get("type") or error.get("type") or "")
        reason = str(first.get("reason") or error.get("reason") or "")
        caused = error.get("caused_by")
        if not reason and isinstance(caused, dict):
            reason = str(caused.get("reason") or "")
    elif isinstance(error, str):
        reason = error
    log = f"{where}: HTTP {status} {kind}: {reason}"
    if kind == "index_not_found_exception" or (status == 404 and not kind):
        return IndexNotFoundError(details=[f"no index {index!r}"], log_message=log)
    if status in (401, 403) or kind == "security_exception":
        return SourceAuthError("The Elasticsearch cluster refused our credentials.",
                               log_message=log)
    if status in (408, 504) or "timeout" in kind:
        return SourceTimeoutError("The Elasticsearch cluster did not answer in time.",
                                  log_message=log)
    if status == 404:
        return SourceNotFoundError(log_message=log)
    if status == 429:
        return SourceRateLimitedError("The Elasticsearch cluster is limiting our requests "
                                      "(HTTP 429).", log_message=log)
    if status == 400:
        return SourceQueryError("Elasticsearch refused the query.",
                                details=[f"{kind}: {reason}" if kind else reason or "bad request"],
                                log_message=log)
    return SourceError(f"The Elasticsearch cluster answered HTTP {status}.",
                       details=[kind] if kind else [], log_message=log)
