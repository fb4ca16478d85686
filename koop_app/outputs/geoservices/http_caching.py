"""HTTP caching of GeoServices answers: validators from the data version, 304 on a match.

The ETag joins the data version and the request's parameters, so an answer changes exactly
when the data or the question does. ``cacheHint=true`` (sent by ArcGIS clients for tile
queries) lets shared caches keep the answer until the data's TTL runs out.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping

from django.utils.http import http_date, parse_http_date_safe
from rest_framework.request import Request
from rest_framework.response import Response

from koop_app.data import LayerSet

MAX_SHARED_AGE = 3600


def etag_of(layers: LayerSet, params: Mapping[str, str]) -> str:
    digest = hashlib.blake2b(digest_size=8)
    for key in sorted(params):
        digest.update(key.encode() + b"\0" + params[key].encode() + b"\0")
    return f'"{layers.version}-{digest.hexdigest()}"'


def conditional(request: Request, response: Response, layers: LayerSet) -> Response:
    """Add validators and Cache-Control; answer 304 when the client's copy is current."""
    if layers.pass_through:
        response["Cache-Control"] = "no-store"
        return response
    etag = etag_of(layers, request.koop_params)
    last_modified = http_date(int(layers.fetched_at))
    wanted = request.META.get("HTTP_IF_NONE_MATCH")
    since = parse_http_date_safe(request.META.get("HTTP_IF_MODIFIED_SINCE") or "")
    if wanted is not None:
        current = wanted.strip() == "*" or etag in [t.strip() for t in wanted.split(",")]
    else:
        current = since is not None and int(layers.fetched_at) <= since
    if current:
        response = Response(None, status=304)
    response["ETag"] = etag
    response["Last-Modified"] = last_modified
    if (request.koop_params.get("cacheHint") or "").strip().lower() == "true":
        left = int(min(max(layers.expires_at - time.time(), 0), MAX_SHARED_AGE))
        response["Cache-Control"] = f"public, max-age={left}"
    else:
        response["Cache-Control"] = "public, max-age=0, must-revalidate"
    return response
