"""Objects of an S3 bucket (AWS or an S3-compatible store) as GeoJSON/CSV layers."""

from .provider import S3Provider

__all__ = ["S3Provider"]
