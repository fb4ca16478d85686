"""HTTP caching of GeoServices answers (koop_app.outputs.http_caching on DRF responses).

``cacheHint=true`` (sent by ArcGIS clients for tile queries) lets shared caches keep the
answer until the data's TTL runs out.
"""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from koop_app.data import LayerSet
from koop_app.outputs.http_caching import MAX_SHARED_AGE, etag_of, validators

__all__ = ["MAX_SHARED_AGE", "conditional", "etag_of"]


def conditional(request: Request, response: Response, layers: LayerSet) -> Response:
    """Add validators and Cache-Control; answer 304 when the client's copy is current."""
    shared = (request.koop_params.get("cacheHint") or "").strip().lower() == "true"
    found = validators(request.META, request.koop_params, layers, shared=shared)
    if found is None:
        response["Cache-Control"] = "no-store"
        return response
    if found.current:
        response = Response(None, status=304)
    found.apply(response)
    return response
