"""HTTP caching of any output's answers: validators from the data version, 304 on a match.

The ETag joins the data version and the request's parameters, so an answer changes exactly
when the data or the question does. Pass-through data is never cached (the source may change
at any time). ``shared_max_age`` lets shared caches keep an answer until the data's TTL runs
out (GeoServices: ``cacheHint=true``; tiles always).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass

from django.http import HttpResponseBase
from django.utils.http import http_date, parse_http_date_safe

from koop_app.data import LayerSet

MAX_SHARED_AGE = 3600


def etag_of(layers: LayerSet, params: Mapping[str, str]) -> str:
    digest = hashlib.blake2b(digest_size=8)
    for key in sorted(params):
        digest.update(key.encode() + b"\0" + params[key].encode() + b"\0")
    return f'"{layers.version}-{digest.hexdigest()}"'


@dataclass(frozen=True)
class Validators:
    etag: str
    last_modified: str
    cache_control: str
    current: bool  # the client's copy is current: answer 304

    def apply(self, response: HttpResponseBase) -> HttpResponseBase:
        response["ETag"] = self.etag
        response["Last-Modified"] = self.last_modified
        response["Cache-Control"] = self.cache_control
        return response


def validators(meta: Mapping[str, str], params: Mapping[str, str], layers: LayerSet, *,
               shared: bool = False) -> Validators | None:
    """The validators of an answer to ``params`` over ``layers`` (None: pass-through data)."""
    if layers.pass_through:
        return None
    etag = etag_of(layers, params)
    wanted = meta.get("HTTP_IF_NONE_MATCH")
    since = parse_http_date_safe(meta.get("HTTP_IF_MODIFIED_SINCE") or "")
    if wanted is not None:
        current = wanted.strip() == "*" or etag in [t.strip() for t in wanted.split(",")]
    else:
        current = since is not None and int(layers.fetched_at) <= since
    if shared:
        left = int(min(max(layers.expires_at - time.time(), 0), MAX_SHARED_AGE))
        cache_control = f"public, max-age={left}"
    else:
        cache_control = "public, max-age=0, must-revalidate"
    return Validators(etag, http_date(int(layers.fetched_at)), cache_control, current)
