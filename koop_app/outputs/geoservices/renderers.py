"""Renderers for ``f=json|pjson|geojson``, with JSONP when a valid ``callback`` is given."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

import orjson
from rest_framework.renderers import BaseRenderer

from koop_app.encoders.text import MoreFlag, StreamedArray
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
            body = orjson.dumps(orjson.loads(orjson.dumps(materialized(data))),
                                option=orjson.OPT_INDENT_2)
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


# Stands in a rendered answer for what is written later; random, so no field name holds it.
LATE_MARKER = f"koop-late-{secrets.token_hex(8)}-"


def _late_parts(data: Any, found: list[Any], path: tuple[str, ...] = ()) -> Any:
    """``data`` with each StreamedArray or MoreFlag (top level or one object down) replaced
    by a unique marker string; the objects in ``found``, in the order they were met."""
    if not isinstance(data, dict) or len(path) > 1:
        return data
    out = {}
    for key, value in data.items():
        if isinstance(value, (StreamedArray, MoreFlag)):
            out[key] = f"{LATE_MARKER}{len(found)}"
            found.append(value)
        else:
            out[key] = _late_parts(value, found, (*path, key))
    return out


def streamed_body(data: Any, callback: str | None) -> Iterator[bytes] | None:
    """The body of an answer with streamed features, as chunks; None when nothing streams.

    The answer is written with markers where the features and the late flags go, then sent
    piece by piece: the features while DuckDB writes them, a flag once they were read.
    """
    found: list[Any] = []
    marked = _late_parts(data, found)
    if not found:
        return None
    text = orjson.dumps(marked)
    pieces = text.split(b'"' + LATE_MARKER.encode())

    def chunks() -> Iterator[bytes]:
        if callback:
            yield callback.encode() + b"("
        yield pieces[0]
        for piece in pieces[1:]:
            number, rest = piece.split(b'"', 1)
            late = found[int(number)]
            if isinstance(late, StreamedArray):
                yield from late.chunks()
            else:
                yield b"true" if late.value() else b"false"
            yield rest
        if callback:
            yield b");"

    return chunks()


def materialized(data: Any) -> Any:
    """``data`` with streamed parts read in full (for indented ``pjson`` and ``f=html``)."""
    found: list[Any] = []
    _late_parts(data, found)
    if not found:
        return data
    # The streams first: a flag knows its value once its stream was read.
    read = {id(late): orjson.Fragment(b"".join(late.chunks()))
            for late in found if isinstance(late, StreamedArray)}

    def put(node: Any, depth: int = 0) -> Any:
        if isinstance(node, StreamedArray):
            return read[id(node)]
        if isinstance(node, MoreFlag):
            return node.value()
        if isinstance(node, dict) and depth < 2:
            return {key: put(value, depth + 1) for key, value in node.items()}
        return node

    return put(data)
