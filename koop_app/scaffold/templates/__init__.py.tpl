"""$title (a koop_app provider)."""

from .provider import $class_name

__all__ = ["$class_name"]
