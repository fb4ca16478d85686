"""A paged JSON records API, passed through: filters go to the source."""

from providers.records.provider import RecordsProvider

__all__ = ["RecordsProvider"]
