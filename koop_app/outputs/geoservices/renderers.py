"""Renderers for ``f=json|pjson|geojson``, with JSONP when a valid ``callback`` is given."""

from __future__ import annotations

import re
from typing import Any

import orjson
from rest_framework.renderers import BaseRenderer

from koop_app.errors import InvalidParameterError

# A JavaScript identifier path such as "cb" or "dojo.io.script.jsonp_dojoIoScript1._jsonpCallback".
CALLBACK = re.compile(r"^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*$")


def jsonp_callback(params: dict[str, str]) -> str | None:
    callback = (params.get("callback") or "").strip()
    if not callback:
        return None
    if len(callback) > 200 or not CALLBACK.match(callback):
        raise InvalidParameterError("callback", "must be a JavaScript identifier")
    return callback


class EsriJSONRenderer(BaseRenderer):
    """Esri JSON (``f=json``), compact."""

    media_type = "application/json"
    format = "json"
    charset = "utf-8"
    indent = False

    def render(self, data: Any, accepted_media_type: str | None = None,
               renderer_context: dict[str, Any] | None = None) -> bytes:
        if data is None:
            return b""
        if self.indent:
            # Fragments are inserted verbatim; re-read them so the whole answer is indented.
            body = orjson.dumps(orjson.loads(orjson.dumps(data)), option=orjson.OPT_INDENT_2)
        else:
            body = orjson.dumps(data)
        callback = (renderer_context or {}).get("callback")
        if callback:
            response = (renderer_context or {}).get("response")
            if response is not None:
                response["Content-Type"] = "application/javascript; charset=utf-8"
            return callback.encode() + b"(" + body + b");"
        return body


class PrettyJSONRenderer(EsriJSONRenderer):
    """``f=pjson``: the same JSON, indented for people."""

    format = "pjson"
    indent = True


class GeoJSONRenderer(EsriJSONRenderer):
    """``f=geojson``: RFC 7946 FeatureCollections."""

    media_type = "application/geo+json"
    format = "geojson"


class PBFRenderer(EsriJSONRenderer):
    """``f=pbf``: the Esri FeatureCollection protocol buffer an encoder wrote.

    Errors stay JSON, as ArcGIS Server answers them whatever ``f`` asked for.
    """

    media_type = "application/x-protobuf"
    format = "pbf"
    charset = None

    def render(self, data: Any, accepted_media_type: str | None = None,
               renderer_context: dict[str, Any] | None = None) -> bytes:
        if isinstance(data, bytes):
            return data
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json; charset=utf-8"
        return super().render(data, accepted_media_type, renderer_context)
