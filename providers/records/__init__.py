"""A paged JSON records API, passed through: filters go to the source."""

from .provider import RecordsProvider

__all__ = ["RecordsProvider"]
