"""MarkLogic through its REST API: Optic rows or searched JSON documents, passed through."""

from .provider import MarkLogicProvider

__all__ = ["MarkLogicProvider"]
