"""PostGIS tables, views and named queries, passed through with the query pushed down."""

from .provider import PostGISProvider

__all__ = ["PostGISProvider"]
