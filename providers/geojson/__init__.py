"""GeoJSON files and URLs."""

from providers.geojson.provider import GeoJSONProvider

__all__ = ["GeoJSONProvider"]
