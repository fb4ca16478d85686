"""The ArcGIS FeatureServer provider: proxy an existing FeatureServer or MapServer."""

from .provider import ArcGISProvider

__all__ = ["ArcGISProvider"]
