"""CSV files and URLs with coordinate or WKT columns."""

from providers.csv_.provider import CSVProvider

__all__ = ["CSVProvider"]
