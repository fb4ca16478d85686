"""A checked ``where`` tree as a MarkLogic structured query (search mode), where it maps.

Structured queries match JSON properties by value (``value-query``: the whole value, with term
options saying how case counts) and, where a range index exists, by range (``range-query``).
So only these parts of a clause are sent:

    field = 'text' | number          value-query (case-insensitive unless the dataset has case)
    field IN (...)                   value-query with several values (any of them)
    field <, <=, >, >=, <>, BETWEEN  range-query, for properties listed in range_indexes
    a AND b, a OR b                  and-query / or-query of parts that map

A top-level AND sends the parts that map and leaves the rest to our engine (the answer is
filtered again, so it stays exact); ``where`` is reported applied only when every part mapped.
NOT, IS NULL, LIKE, functions and dates stay with the engine: a ``not-query`` matches
documents that lack the property, where SQL's NOT does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from koop_app.data.schema import DATE, STRING, LayerSchema
from koop_app.query.where import literal_number, unparen

Node = dict[str, Any]
# Exact matching of a whole value apart from case (the engine's text equality).
_TEXT_OPTIONS = ["diacritic-sensitive", "punctuation-sensitive", "whitespace-sensitive",
                 "unstemmed", "unwildcarded"]
_RANGES = {exp.GT: "GT", exp.GTE: "GE", exp.LT: "LT", exp.LTE: "LE", exp.NEQ: "NE",
           exp.EQ: "EQ"}
_MIRRORED = {"GT": "LT", "GE": "LE", "LT": "GT", "LE": "GE", "NE": "NE", "EQ": "EQ"}
NUMERIC_RANGE_TYPES = {"int", "unsignedInt", "long", "unsignedLong", "float", "double",
                       "decimal"}


class SearchWhere:
    """Structured query parts for a clause, over a layer whose fields are JSON properties."""

    def __init__(self, schema: LayerSchema, *, case_sensitive: bool = False,
                 range_indexes: Mapping[str, str] | None = None) -> None:
        self.schema = schema
        self.case_sensitive = case_sensitive
        self.range_indexes = {k.lower(): v for k, v in (range_indexes or {}).items()}

    def emit(self, tree: exp.Expression | None) -> tuple[list[Node], bool]:
        """The queries to AND together, and whether they are the whole clause."""
        if tree is None:
            return [], True
        parts = _conjuncts(tree)
        pushed = [query for query in (self.query(part) for part in parts) if query is not None]
        return pushed, len(pushed) == len(parts)

    def query(self, node: exp.Expression) -> Node | None:
        node = unparen(node)
        if isinstance(node, (exp.And, exp.Or)):
            parts = [self.query(part) for part in _chain(node, type(node))]
            if any(part is None for part in parts):
                return None
            key = "and-query" if isinstance(node, exp.And) else "or-query"
            return {key: {"queries": parts}}
        if isinstance(node, exp.In):
            column, values = unparen(node.this), [unparen(v) for v in node.expressions]
            if isinstance(column, exp.Column) and all(isinstance(v, exp.Literal)
                                                      for v in values):
                return self._values(column, values)
            return None
        if isinstance(node, exp.Between):
            low = self._range(node.this, "GE", node.args["low"])
            high = self._range(node.this, "LE", node.args["high"])
            return None if low is None or high is None else {"and-query": {"queries": [
                low, high]}}
        if type(node) in _RANGES:
            a, b = unparen(node.this), unparen(node.expression)
            operator = _RANGES[type(node)]
            if isinstance(b, exp.Column) and not isinstance(a, exp.Column):
                a, b, operator = b, a, _MIRRORED[operator]
            if not isinstance(a, exp.Column) or not isinstance(b, (exp.Literal, exp.Neg)):
                return None
            if operator == "EQ" and isinstance(b, exp.Literal):
                return self._values(a, [b])
            return self._range(a, operator, b)
        return None

    def _values(self, column: exp.Column, literals: list[exp.Literal]) -> Node | None:
        field = self.schema.field(column.name)
        if field is None or field.type == DATE:
            return None
        if field.type == STRING:
            if any(not literal.is_string for literal in literals):
                return None
            case = "case-sensitive" if self.case_sensitive else "case-insensitive"
            return {"value-query": {"json-property": field.name, "type": "string",
                                    "text": [literal.this for literal in literals],
                                    "term-option": [case, *_TEXT_OPTIONS]}}
        numbers = [literal_number(literal.this) for literal in literals]
        if any(number is None for number in numbers):
            return None
        return {"value-query": {"json-property": field.name, "type": "number",
                                "text": numbers}}

    def _range(self, column: exp.Expression, operator: str, bound: exp.Expression
               ) -> Node | None:
        column, bound = unparen(column), unparen(bound)
        if not isinstance(column, exp.Column):
            return None
        field = self.schema.field(column.name)
        kind = self.range_indexes.get(column.name.lower())
        if field is None or kind not in NUMERIC_RANGE_TYPES:
            return None
        negative = isinstance(bound, exp.Neg)
        literal = bound.this if negative else bound
        if not isinstance(literal, exp.Literal):
            return None
        value = literal_number(literal.this)
        if value is None:
            return None
        return {"range-query": {"json-property": field.name, "type": f"xs:{kind}",
                                "range-operator": operator,
                                "value": [-value if negative else value]}}


def geo_box_query(options: Mapping[str, Any], bbox: tuple[float, float, float, float]
                  ) -> Node | None:
    """The geospatial query for a WGS 84 envelope under the layer's geospatial index."""
    xmin, ymin, xmax, ymax = bbox
    box = {"south": ymin, "west": xmin, "north": ymax, "east": xmax}
    index = options.get("geo_index") or ""
    if index == "pair":
        lat, lon = str(options.get("latitude") or ""), str(options.get("longitude") or "")
        lat_parent, _, lat_name = lat.rpartition(".")
        lon_parent, _, lon_name = lon.rpartition(".")
        if not lat_parent or lat_parent != lon_parent:
            return None
        return {"geo-json-property-pair-query": {
            "parent-property": lat_parent.rpartition(".")[2], "lat-property": lat_name,
            "lon-property": lon_name, "box": [box]}}
    if index == "path" and options.get("geo_path"):
        return {"geo-path-query": {"path-index": {"text": str(options["geo_path"])},
                                   "box": [box]}}
    return None




def _chain(node: exp.Expression, kind: type[exp.Expression]) -> list[exp.Expression]:
    out: list[exp.Expression] = []
    pending = [node]
    while pending:
        current = unparen(pending.pop())
        if type(current) is kind:
            pending.extend([current.expression, current.this])
        else:
            out.append(current)
    return out


def _conjuncts(tree: exp.Expression) -> list[exp.Expression]:
    return _chain(tree, exp.And)
