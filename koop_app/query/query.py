"""The parsed query: one frozen value built from the request's parameters."""

from __future__ import annotations

from dataclasses import dataclass

from koop_app.query.params.geometry import SpatialFilter
from koop_app.query.params.quantization import Quantization
from koop_app.query.params.statistics import Statistic
from koop_app.query.sr import SpatialRef
from koop_app.query.where import WhereClause


@dataclass(frozen=True)
class Query:
    # which features
    where: WhereClause | None = None
    object_ids: tuple[int, ...] | None = None
    spatial: SpatialFilter | None = None
    time: tuple[int | None, int | None] | None = None
    # what to return
    out_fields: tuple[str, ...] | None = None  # None: every field
    return_geometry: bool = True
    out_sr: SpatialRef | None = None  # None: the layer's (WGS 84)
    geometry_precision: int | None = None
    max_allowable_offset: float | None = None
    quantization: Quantization | None = None
    return_centroid: bool = False
    count_only: bool = False
    ids_only: bool = False
    extent_only: bool = False
    distinct: bool = False
    statistics: tuple[Statistic, ...] = ()
    group_by: tuple[str, ...] = ()
    having: WhereClause | None = None
    # order and paging
    order_by: tuple[tuple[str, bool], ...] = ()
    offset: int = 0
    limit: int | None = None  # None: up to the layer's record limit
    result_type: str = ""  # "", "standard" or "tile"
    record_count_factor: int = 1
    return_exceeded_limit_features: bool = True
