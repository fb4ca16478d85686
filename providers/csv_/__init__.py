"""CSV files and URLs with coordinate or WKT columns."""

from .provider import CSVProvider

__all__ = ["CSVProvider"]
