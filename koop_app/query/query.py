"""The parsed query: one frozen value built from the request's parameters."""

from __future__ import annotations

from dataclasses import dataclass

from koop_app.query.where import WhereClause


@dataclass(frozen=True)
class Query:
    where: WhereClause | None = None
    out_fields: tuple[str, ...] | None = None  # None: every field
    return_geometry: bool = True
    offset: int = 0
    limit: int | None = None  # None: up to the layer's maxRecordCount
    count_only: bool = False
    ids_only: bool = False
