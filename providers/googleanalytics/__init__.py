"""A Google Analytics 4 report by country, region or city, as features with geometries."""

from .provider import GoogleAnalyticsProvider

__all__ = ["GoogleAnalyticsProvider"]
