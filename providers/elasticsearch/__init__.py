"""Elasticsearch / OpenSearch indices, passed through: queries run in the cluster."""

from .provider import ElasticsearchProvider

__all__ = ["ElasticsearchProvider"]
