"""``f=`` picks the renderer, from the query string or a POSTed form; default ``json``."""

from __future__ import annotations

from typing import Any

from rest_framework.negotiation import BaseContentNegotiation

from koop_app.errors import InvalidParameterError


class FormatNegotiation(BaseContentNegotiation):
    def select_renderer(self, request: Any, renderers: list[Any], format_suffix: str | None = None
                        ) -> tuple[Any, str]:
        params = getattr(request, "koop_params", None) or request.query_params
        wanted = (params.get("f") or "json").strip().lower()
        for renderer in renderers:
            if renderer.format == wanted:
                return renderer, renderer.media_type
        formats = ", ".join(r.format for r in renderers)
        raise InvalidParameterError("f", f"{wanted!r} is not supported here (use {formats})")

    def select_parser(self, request: Any, parsers: list[Any]) -> Any:
        content_type = request.content_type or ""
        for parser in parsers:
            if content_type.startswith(parser.media_type.split(";")[0]):
                return parser
        return None
