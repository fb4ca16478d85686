"""GeoServices query parts as Elasticsearch query DSL (the ``_search`` body's ``query``).

``where``: the tree ``koop_app.query.where.checked_tree`` accepted, emitted node by node.
SQL's three-valued logic is kept: ``NOT (a = 1)`` does not match documents without ``a``
(each node has a "true" form and a "false" form; NOT swaps them). Text compares without case
unless the dataset is case-sensitive, as on ArcGIS Online: ``term``/``wildcard`` with
``case_insensitive``. What the DSL cannot say exactly (arithmetic, functions, comparing two
fields, ranges over text with case folding on a keyword without a normalizer) is a 400 naming
the part, never a silently wider answer.

``geometry``: envelopes on geo_point fields as ``geo_bounding_box``, a point with a
``distance`` as ``geo_distance``, anything else as ``geo_shape`` with the relation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import shapely
from sqlglot import exp

from koop_app.data.schema import DATE, DOUBLE, INTEGER, SMALL_INTEGER, STRING
from koop_app.data.values import parse_date_ms
from koop_app.errors import InvalidParameterError
from koop_app.query import strings
from koop_app.query.params.geometry import (
    UNITS_IN_METERS,
    WHOLE_EARTH_METERS,
    SpatialFilter,
    parse_spatial_filter,
)
from koop_app.query.where import literal_number, unparen

from .schema import IndexLayer, SourceField

MATCH_ALL: dict[str, Any] = {"match_all": {}}
MS_PER_DAY = 86_400_000


class Unsupported(Exception):
    """A part of a clause the query DSL cannot express exactly."""


def _snippet(node: exp.Expression) -> str:
    text = node.sql()
    return text if len(text) <= 80 else text[:77] + "..."


class WhereEmitter:
    """One clause's tree -> DSL, given the index's fields and the dataset's case rule."""

    def __init__(self, layer: IndexLayer, *, case_sensitive: bool, id_field: str) -> None:
        self.layer = layer
        self.case_sensitive = case_sensitive
        self.id_field = id_field  # the OBJECTID name when ids are assigned (not filterable)

    def emit(self, tree: exp.Expression) -> dict[str, Any]:
        try:
            return self.true(tree)
        except Unsupported as exc:
            raise InvalidParameterError(
                "where", f"{exc} (Elasticsearch cannot evaluate it; the elasticsearch "
                         "provider sends the whole clause to the index)") from None

    # Each node as the documents for which it is TRUE, and those for which it is FALSE.
    def true(self, node: exp.Expression) -> dict[str, Any]:
        return self._dispatch(node, negate=False)

    def false(self, node: exp.Expression) -> dict[str, Any]:
        return self._dispatch(node, negate=True)

    def _dispatch(self, node: exp.Expression, *, negate: bool) -> dict[str, Any]:
        if isinstance(node, exp.Paren):
            return self._dispatch(node.this, negate=negate)
        if isinstance(node, exp.Not):
            return self._dispatch(node.this, negate=not negate)
        if isinstance(node, exp.And):
            parts = [self._dispatch(n, negate=negate) for n in _chain(node, exp.And)]
            return _should(parts) if negate else _filter(parts)
        if isinstance(node, exp.Or):
            parts = [self._dispatch(n, negate=negate) for n in _chain(node, exp.Or)]
            return _filter(parts) if negate else _should(parts)
        if isinstance(node, exp.Boolean):
            return MATCH_ALL if bool(node.this) != negate else _none()
        if isinstance(node, exp.Is):
            found = self._field(node.this)
            exists = {"exists": {"field": found.keyword or found.name}}
            # IS NULL is never unknown: its false form is plain negation.
            return exists if negate else _must_not(exists)
        predicate, found = self._predicate(node)
        if not negate:
            return predicate
        # FALSE (not unknown) needs a value: documents without the field stay out.
        return {"bool": {"filter": [{"exists": {"field": found.keyword or found.name}}],
                         "must_not": [predicate]}}

    def _predicate(self, node: exp.Expression) -> tuple[dict[str, Any], SourceField]:
        handler = self._handlers().get(type(node))
        if handler is None:
            raise Unsupported(f"{_snippet(node)} is not supported")
        return handler(node)

    def _handlers(self) -> dict[type, Callable[[Any], tuple[dict[str, Any], SourceField]]]:
        return {exp.EQ: self._compare, exp.NEQ: self._compare, exp.GT: self._compare,
                exp.GTE: self._compare, exp.LT: self._compare, exp.LTE: self._compare,
                exp.In: self._in, exp.Between: self._between, exp.Like: self._like,
                exp.Escape: self._escape}

    # --- operands -----------------------------------------------------------------------------
    def _field(self, node: exp.Expression) -> SourceField:
        node = unparen(node)
        if isinstance(node, (exp.Upper, exp.Lower)) and not self.case_sensitive:
            node = unparen(node.this)  # upper(name) = 'X' is name = 'X' without case
        if not isinstance(node, exp.Column):
            raise Unsupported(f"{_snippet(node)}: only a field can be compared")
        found = self.layer.field(node.name)
        if found is None:
            if node.name.lower() == self.id_field.lower():
                raise Unsupported(f"{node.name!r} is assigned by the server, not a field of "
                                  "the index (use objectIds, or set the id_field option)")
            raise Unsupported(f"{node.name!r} is not a field of the index")
        return found

    def _literal(self, node: exp.Expression, found: SourceField) -> Any:
        node = unparen(node)
        negative = False
        if isinstance(node, exp.Neg):
            negative, node = True, unparen(node.this)
        if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal):
            ms = parse_date_ms(node.this.this)
            if ms is None:
                raise Unsupported(f"{_snippet(node)} is not a date")
            if node.to.this == exp.DataType.Type.DATE:
                ms -= ms % MS_PER_DAY
            return ms
        if isinstance(node, (exp.CurrentDate, exp.CurrentTimestamp)):
            raise Unsupported(f"{_snippet(node)}: the server's clock is not sent to the index")
        if not isinstance(node, exp.Literal):
            raise Unsupported(f"{_snippet(node)}: only a literal value can be compared with "
                              "a field")
        text = node.this
        if found.esri_type == DATE:
            ms = parse_date_ms(text) if node.is_string else literal_number(text)
            if ms is None:
                raise Unsupported(f"{text!r} is not a date")
            return -ms if negative else ms
        if found.esri_type in (INTEGER, SMALL_INTEGER, DOUBLE):
            value = literal_number(text)
            if value is None:
                raise Unsupported(f"{text!r} is not a number")
            if found.es_type == "boolean":
                return bool(value)
            return -value if negative else value
        if negative:
            raise Unsupported(f"-{text} compared with text")
        return text

    def _sides(self, node: exp.Expression) -> tuple[SourceField, Any, bool]:
        """(field, literal, flipped) of ``field op literal`` or ``literal op field``."""
        left, right = node.this, node.expression
        if _is_field(left):
            found = self._field(left)
            return found, self._literal(right, found), False
        if _is_field(right):
            found = self._field(right)
            return found, self._literal(left, found), True
        raise Unsupported(f"{_snippet(node)}: one side must be a field, the other a value")

    # --- predicates ---------------------------------------------------------------------------
    def _compare(self, node: exp.Expression) -> tuple[dict[str, Any], SourceField]:
        found, value, flipped = self._sides(node)
        if isinstance(node, (exp.EQ, exp.NEQ)):
            term = self._term(found, value)
            if isinstance(node, exp.EQ):
                return term, found
            return {"bool": {"filter": [{"exists": {"field": self._target(found)}}],
                             "must_not": [term]}}, found
        operator = {exp.GT: "gt", exp.GTE: "gte", exp.LT: "lt", exp.LTE: "lte"}[type(node)]
        if flipped:
            operator = {"gt": "lt", "gte": "lte", "lt": "gt", "lte": "gte"}[operator]
        return self._range(found, {operator: value}), found

    def _in(self, node: exp.In) -> tuple[dict[str, Any], SourceField]:
        if node.args.get("query") or not node.expressions:
            raise Unsupported(f"{_snippet(node)}: IN takes a list of values")
        found = self._field(node.this)
        values = [self._literal(item, found) for item in node.expressions]
        if found.esri_type == STRING and self._folds(found, *values):
            return _should([self._term(found, v) for v in values]), found
        return {"terms": {self._target(found): values}}, found

    def _between(self, node: exp.Between) -> tuple[dict[str, Any], SourceField]:
        found = self._field(node.this)
        low = self._literal(node.args["low"], found)
        high = self._literal(node.args["high"], found)
        return self._range(found, {"gte": low, "lte": high}), found

    def _like(self, node: exp.Like, escape: str | None = None
              ) -> tuple[dict[str, Any], SourceField]:
        found = self._field(node.this)
        if found.esri_type != STRING:
            raise Unsupported(f"{_snippet(node)}: LIKE takes a text field")
        pattern = unparen(node.expression)
        if not (isinstance(pattern, exp.Literal) and pattern.is_string):
            raise Unsupported(f"{_snippet(node)}: LIKE takes a quoted pattern")
        wildcard = like_to_wildcard(pattern.this, escape)
        if found.keyword is None:
            raise Unsupported(f"{found.name!r} is analysed text without a keyword sub-field")
        body: dict[str, Any] = {"value": wildcard}
        if self._folds(found, pattern.this):
            body["case_insensitive"] = True
        return {"wildcard": {found.keyword: body}}, found

    def _escape(self, node: exp.Escape) -> tuple[dict[str, Any], SourceField]:
        escape = node.expression
        if not isinstance(node.this, exp.Like) or not (
                isinstance(escape, exp.Literal) and escape.is_string and len(escape.this) == 1):
            raise Unsupported(f"{_snippet(node)}: ESCAPE takes one character after LIKE")
        return self._like(node.this, escape.this)

    # --- helpers ------------------------------------------------------------------------------
    def _target(self, found: SourceField) -> str:
        if found.keyword is None:
            raise Unsupported(f"{found.name!r} is analysed text without a keyword sub-field: "
                              "only LIKE can search it")
        return found.keyword

    def _folds(self, found: SourceField, *values: Any) -> bool:
        """Whether a text comparison must ignore case (a value with cased letters)."""
        return (found.esri_type == STRING and not self.case_sensitive and not found.normalized
                and any(isinstance(v, str) and strings.cased(v) for v in values))

    def _term(self, found: SourceField, value: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"value": value}
        if self._folds(found, value):
            body["case_insensitive"] = True
        return {"term": {self._target(found): body}}

    def _range(self, found: SourceField, bounds: dict[str, Any]) -> dict[str, Any]:
        if self._folds(found, *bounds.values()):
            raise Unsupported(f"{found.name!r}: text ranges compare without case here, and "
                              "Elasticsearch compares keywords exactly (give the field a "
                              "lowercase normalizer, or make the dataset case-sensitive)")
        if found.esri_type == DATE:
            bounds = {**bounds, "format": "epoch_millis"}
        return {"range": {self._target(found): bounds}}


def like_to_wildcard(pattern: str, escape: str | None = None) -> str:
    """SQL LIKE (``%``, ``_``, an ESCAPE character) as a wildcard query value (``*``, ``?``)."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if escape is not None and char == escape and index + 1 < len(pattern):
            index += 1
            char = pattern[index]
            out.append("\\" + char if char in "*?\\" else char)
        elif char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        elif char in "*?\\":
            out.append("\\" + char)
        else:
            out.append(char)
        index += 1
    return "".join(out)


def _is_field(node: exp.Expression) -> bool:
    node = unparen(node)
    return isinstance(node, (exp.Column, exp.Upper, exp.Lower))


def _chain(node: exp.Expression, kind: type) -> list[exp.Expression]:
    """The operands of a chain of one operator (``a AND b AND c``), without recursion."""
    out, pending = [], [node]
    while pending:
        item = pending.pop()
        if isinstance(item, kind):
            pending.extend([item.expression, item.this])
        else:
            out.append(item)
    return out


def _filter(parts: list[dict[str, Any]]) -> dict[str, Any]:
    return parts[0] if len(parts) == 1 else {"bool": {"filter": parts}}


def _should(parts: list[dict[str, Any]]) -> dict[str, Any]:
    return parts[0] if len(parts) == 1 else {"bool": {"should": parts,
                                                      "minimum_should_match": 1}}


def _must_not(part: dict[str, Any]) -> dict[str, Any]:
    return {"bool": {"must_not": [part]}}


def _none() -> dict[str, Any]:
    return _must_not(MATCH_ALL)


# --- geometry -----------------------------------------------------------------------------------

# The engine's relations (koop_app/query/engine.py): "within" is the query geometry within
# the feature, "contains" the query geometry containing it; Elasticsearch's relation names
# what the indexed shape does to the query shape.
RELATIONS = {"intersects": "intersects", "envelope": "intersects", "within": "contains",
             "contains": "within"}


def spatial_query(spatial: SpatialFilter, layer: IndexLayer, raw: dict[str, str]
                  ) -> dict[str, Any]:
    """The geometry filter as DSL; a 400 for relations the index cannot answer."""
    name = layer.geometry_field
    if name is None:
        raise InvalidParameterError("geometry", "the index has no geo_point or geo_shape field")
    relation = RELATIONS.get(spatial.relation)
    if relation is None:
        raise InvalidParameterError("spatialRel", f"{spatial.relation} is not supported by "
                                    "Elasticsearch (intersects, envelope intersects, within, "
                                    "contains are)")
    point_field = layer.geometry_kind == "geo_point"
    if point_field and relation == "contains":
        # A geometry within a point: Elasticsearch refuses CONTAINS on geo_point fields.
        raise InvalidParameterError("spatialRel", "a geometry within a point is not "
                                    "supported on a geo_point field")
    circle = _circle(raw) if relation == "intersects" and point_field else None
    if circle is not None:  # exact on the sphere, where the parser's buffer is a polygon
        centre, meters = circle
        return {"geo_distance": {"distance": f"{meters!r}m",
                                 name: {"lat": centre.y, "lon": centre.x}}}
    if spatial.is_box or (spatial.relation == "envelope"):
        xmin, ymin, xmax, ymax = spatial.bbox
        if point_field:
            return {"geo_bounding_box": {name: {"top_left": {"lat": ymax, "lon": xmin},
                                                "bottom_right": {"lat": ymin, "lon": xmax}}}}
        shape: dict[str, Any] = {"type": "envelope", "coordinates": [[xmin, ymax], [xmax, ymin]]}
    else:
        geometry = shapely.orient_polygons(spatial.geometry)  # counter-clockwise shells
        shape = orjson.loads(shapely.to_geojson(geometry))
    return {"geo_shape": {name: {"shape": shape, "relation": relation}}}


def _circle(raw: dict[str, str]) -> tuple[shapely.Point, float] | None:
    """(centre in WGS 84, meters) of a point geometry with a ``distance``, else None."""
    text = (raw.get("distance") or "").strip()
    try:
        amount = float(text) if text else 0.0
    except ValueError:
        return None
    factor = UNITS_IN_METERS.get((raw.get("units") or "esriSRUnit_Meter").strip().lower())
    if amount <= 0 or factor is None or amount * factor >= WHOLE_EARTH_METERS:
        return None
    centre = parse_spatial_filter({**raw, "distance": ""})
    if centre is None or shapely.get_type_id(centre.geometry) != 0:
        return None
    return centre.geometry, amount * factor


def sort_keys(order_by: tuple[tuple[str, bool], ...], layer: IndexLayer) -> list[dict[str, Any]]:
    """orderByFields as ``sort``, with missing values where ArcGIS puts NULLs."""
    keys = []
    for name, descending in order_by:
        found = layer.field(name)
        if found is None or found.keyword is None:
            raise InvalidParameterError("orderByFields", f"{name!r} cannot be sorted on "
                                        "(analysed text without a keyword sub-field)")
        keys.append({found.keyword: {"order": "desc" if descending else "asc",
                                     "missing": "_last" if descending else "_first"}})
    return keys
