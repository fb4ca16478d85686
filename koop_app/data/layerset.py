"""A dataset's layers at one version, ready to query."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from koop_app.data.cache import Pointer
from koop_app.data.hot import LayerTable
from koop_app.errors import NotFoundError


@dataclass(frozen=True)
class LayerSet:
    """Every layer and table of a dataset, one version, ready to query."""

    key: str
    version: str
    layers: tuple[LayerTable, ...]
    relationships: tuple[dict[str, Any], ...] = ()
    fetched_at: float = 0.0
    expires_at: float = 0.0
    pass_through: bool = False
    count: int = 0

    def layer(self, layer_id: int) -> LayerTable:
        for table in self.layers:
            if table.layer_id == layer_id:
                return table
        raise NotFoundError("Layer not found.", details=[f"No layer {layer_id}"])

    @classmethod
    def of(cls, pointer: Pointer, tables: tuple[LayerTable, ...] = ()) -> LayerSet:
        """``pointer``'s version with ``tables`` (none: a copy stored, not held here)."""
        return cls(pointer.key, pointer.version, tables, pointer.relationships,
                   pointer.fetched_at, pointer.expires_at, count=pointer.count)
