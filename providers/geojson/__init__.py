"""GeoJSON files and URLs."""

from .provider import GeoJSONProvider

__all__ = ["GeoJSONProvider"]
