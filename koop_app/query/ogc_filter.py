"""OGC filters (CQL2 text/JSON, Filter Encoding 1.1/2.0) -> GeoServices query parameters.

pygeofilter parses each standard's syntax into one AST; this module writes that AST as the
GeoServices parameters the FeatureServer's ``query`` takes: ``where`` (our SQL subset, then
checked by ``koop_app.query.where`` against the layer like any client's clause: fields, kinds,
sizes) and one spatial filter (``geometry``/``spatialRel``/``inSR``/``distance``). Going through
the same parameters keeps one checked path for every output, and lets pass-through providers
push OGC filters to their source as they push ``where``.

Spatial predicates become the spatial filter, so they must be conjuncts of the top-level AND
(several envelopes are intersected into one); under OR or NOT they are refused with a message
saying so. Names and literals are written quoted by us (names double-quoted, text single-quoted
with quotes doubled, numbers by ``repr``, dates as ``timestamp '...'`` in UTC); attributes must
be fields of the layer, matched without case.

    params = to_geoservices(cql2_text("pop > 5 AND S_INTERSECTS(geom, BBOX(0,0,1,1))"), schema)
    # {"where": "pop > 5", "geometry": "{...GeoJSON...}", "geometryType": ..., ...}
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

import orjson
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_json import parse as _parse_cql2_json
from pygeofilter.parsers.cql2_text import parse as _parse_cql2_text

from koop_app.data.schema import LayerSchema
from koop_app.errors import InvalidParameterError

# CQL2/FES spatial predicate -> GeoServices spatialRel (for "feature <op> literal"). The
# engine's "contains" is "the query geometry contains the feature", i.e. S_WITHIN(feature, g).
SPATIAL_RELATIONS: dict[type, str] = {
    ast.GeometryIntersects: "esriSpatialRelIntersects",
    ast.GeometryWithin: "esriSpatialRelContains",
    ast.GeometryContains: "esriSpatialRelWithin",
    ast.GeometryTouches: "esriSpatialRelTouches",
    ast.GeometryCrosses: "esriSpatialRelCrosses",
    ast.GeometryOverlaps: "esriSpatialRelOverlaps",
}
COMPARISONS: dict[type, str] = {
    ast.Equal: "=", ast.NotEqual: "<>", ast.LessThan: "<", ast.LessEqual: "<=",
    ast.GreaterThan: ">", ast.GreaterEqual: ">=",
}
ARITHMETIC: dict[type, str] = {ast.Add: "+", ast.Sub: "-", ast.Mul: "*", ast.Div: "/"}
# Instants compared by time predicates (T_AFTER(t, TIMESTAMP(..)) is t > ..).
TEMPORAL: dict[type, str] = {ast.TimeAfter: ">", ast.TimeBefore: "<", ast.TimeEquals: "="}
FUNCTIONS = {"lower": "LOWER", "upper": "UPPER", "casei": "LOWER"}
UNITS = {"m": "esriSRUnit_Meter", "meters": "esriSRUnit_Meter", "metre": "esriSRUnit_Meter",
         "km": "esriSRUnit_Kilometer", "kilometers": "esriSRUnit_Kilometer",
         "ft": "esriSRUnit_Foot", "feet": "esriSRUnit_Foot",
         "mi": "esriSRUnit_StatuteMile", "miles": "esriSRUnit_StatuteMile",
         "nmi": "esriSRUnit_NauticalMile"}


class FilterError(InvalidParameterError):
    """A filter we cannot take; ``parameter`` names the request parameter that carried it."""


def parse_cql2_text(text: str) -> ast.Node:
    try:
        prepared = _prepared(text) if _QUOTE not in text else text
        return _repaired(_parse_cql2_text(prepared))
    except Exception as exc:  # noqa: BLE001 - lark raises many kinds; all are the client's
        raise FilterError("filter", f"not valid CQL2 text: {_first_line(exc)}") from None


def parse_cql2_json(text: str | bytes | dict[str, Any]) -> ast.Node:
    try:
        document = text if isinstance(text, dict) else orjson.loads(text)
        return _repaired(_parse_cql2_json(_boxes_as_polygons(document)))
    except FilterError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise FilterError("filter", f"not valid CQL2 JSON: {_first_line(exc)}") from None


def _boxes_as_polygons(node: Any) -> Any:
    """``{"bbox": [minx, miny, maxx, maxy]}`` as a GeoJSON polygon: pygeofilter 0.4 reads the
    four numbers in another order."""
    if isinstance(node, list):
        return [_boxes_as_polygons(item) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"bbox"}:
        box = node["bbox"]
        if not isinstance(box, list) or len(box) not in (4, 6) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in box):
            raise FilterError("filter", "a bbox is 4 or 6 numbers")
        x1, y1, x2, y2 = box if len(box) == 4 else (box[0], box[1], box[3], box[4])
        return {"type": "Polygon",
                "coordinates": [[[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]]]}
    return {key: _boxes_as_polygons(value) for key, value in node.items()}


# pygeofilter 0.4's CQL2 grammar has gaps real filters hit, closed around the parser:
# - single-letter property names (``a = 1``) do not parse: they are quoted first (``"a" = 1``),
#   outside string literals and quoted names;
# - a doubled quote inside a string (``'it''s'``) does not parse: it stands as a private-use
#   character while parsing and is turned back into a quote in the tree;
# - LIKE's single-character wildcard is ``_`` in CQL2 (both encodings), but pygeofilter marks it
#   as ``.``: the tree's LIKE nodes are corrected; ``CASEI(x) LIKE CASEI('p')`` is a LIKE
#   without case.
_WKT_TYPES = ("POINT", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING",
              "MULTIPOLYGON", "GEOMETRYCOLLECTION")
_QUOTE = "\ue000"
# A string literal, a quoted name, or a lone letter that is a whole word (not a function name).
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|(?<![\w.])([A-Za-z])(?![\w.(])")


def _prepared(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if match.group(1):
            before = match.string[:match.start()].rstrip().upper()
            if token.upper() in "ZM" and before.endswith(_WKT_TYPES):  # POINT Z (1 2 3)
                return token
            return f'"{token}"'
        if token.startswith("'"):
            return "'" + token[1:-1].replace("''", _QUOTE) + "'"
        return token

    return _TOKENS.sub(replace, text)


def _repaired(node: Any) -> Any:
    if isinstance(node, str):
        return node.replace(_QUOTE, "'")
    if isinstance(node, list):
        return [_repaired(item) for item in node]
    if isinstance(node, ast.Like):
        node.singlechar = "_"
        if isinstance(node.pattern, ast.Function) and node.pattern.name in ("lower", "upper") \
                and len(node.pattern.arguments) == 1 \
                and isinstance(node.pattern.arguments[0], str):
            # CASEI(name) LIKE CASEI('pattern'): a case-insensitive LIKE.
            node.pattern, node.nocase = node.pattern.arguments[0], True
        node.pattern = _repaired(node.pattern)
    if isinstance(node, ast.Node | ast.Function):
        for name, value in vars(node).items():
            if isinstance(value, str | list | ast.Node):
                setattr(node, name, _repaired(value))
    return node


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def to_geoservices(node: ast.Node | None, schema: LayerSchema, *, parameter: str = "filter",
                   in_sr: str = "4326", swap_xy: bool = False) -> dict[str, str]:
    """The GeoServices parameters of filter ``node`` on a layer of ``schema``.

    ``in_sr`` is the WKID (or WKT) of the filter's geometries; ``swap_xy`` reads their
    coordinates as (y, x), for CRSs whose axis order is latitude first (EPSG:4326 in WFS 2.0).
    """
    writer = _Writer(schema, parameter, swap_xy)
    conjuncts = _conjuncts(node) if node is not None else []
    clauses = [writer.condition(c) for c in conjuncts if not writer.take_spatial(c)]
    params = {"where": " AND ".join(clauses)} if clauses else {}
    params.update(writer.spatial_params(in_sr))
    return params


def _conjuncts(node: Any) -> list[Any]:
    if isinstance(node, ast.And):
        return _conjuncts(node.lhs) + _conjuncts(node.rhs)
    return [node]


class _Writer:
    def __init__(self, schema: LayerSchema, parameter: str, swap_xy: bool) -> None:
        self.schema = schema
        self.parameter = parameter
        self.swap_xy = swap_xy
        self.spatial: list[tuple[str, dict[str, Any], Any]] = []  # (relation, geojson, extra)

    def bad(self, problem: str) -> FilterError:
        return FilterError(self.parameter, problem)

    # --- spatial predicates: the query's spatial filter ----------------------------------
    def take_spatial(self, node: Any) -> bool:
        if isinstance(node, ast.BBox):
            self.spatial.append(("esriSpatialRelIntersects", self._box(
                node.minx, node.miny, node.maxx, node.maxy), None))
            return True
        if isinstance(node, ast.Not) and isinstance(node.sub_node, ast.GeometryDisjoint):
            # FES's BBOX arrives as NOT DISJOINT: intersects.
            return self.take_spatial(ast.GeometryIntersects(node.sub_node.lhs,
                                                            node.sub_node.rhs))
        relation = SPATIAL_RELATIONS.get(type(node))
        if relation is not None:
            self.spatial.append((relation, self._geometry(node.lhs, node.rhs), None))
            return True
        if isinstance(node, ast.DistanceWithin):
            units = UNITS.get(str(node.units).lower())
            if units is None:
                raise self.bad(f"unknown distance units {node.units!r}")
            self.spatial.append(("esriSpatialRelIntersects", self._geometry(node.lhs, node.rhs),
                                 (float(node.distance), units)))
            return True
        return False

    def _geometry(self, lhs: Any, rhs: Any) -> dict[str, Any]:
        literal = rhs if isinstance(lhs, ast.Attribute) else lhs
        if isinstance(literal, values.Envelope):
            return self._box(literal.x1, literal.y1, literal.x2, literal.y2)
        if isinstance(literal, ast.Function) and literal.name.lower() == "bbox":
            args = [float(a) for a in literal.arguments]
            if len(args) == 6:  # 3D: minx, miny, minz, maxx, maxy, maxz
                args = [args[0], args[1], args[3], args[4]]
            if len(args) != 4:
                raise self.bad("BBOX takes 4 or 6 numbers")
            return self._box(*args)
        if isinstance(literal, values.Geometry):
            geometry = dict(literal.geometry)
            if self.swap_xy:
                geometry["coordinates"] = _swapped(geometry.get("coordinates"))
            return geometry
        raise self.bad("a spatial predicate compares the geometry with a geometry literal")

    def _box(self, minx: Any, miny: Any, maxx: Any, maxy: Any) -> dict[str, Any]:
        x1, y1, x2, y2 = (float(v) for v in (minx, miny, maxx, maxy))
        if self.swap_xy:
            x1, y1, x2, y2 = y1, x1, y2, x2
        return {"type": "Polygon", "bbox": [x1, y1, x2, y2],
                "coordinates": [[[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]]]}

    def spatial_params(self, in_sr: str) -> dict[str, str]:
        if not self.spatial:
            return {}
        if len(self.spatial) > 1:
            boxes = [g.get("bbox") for r, g, extra in self.spatial
                     if r == "esriSpatialRelIntersects" and extra is None]
            if len(boxes) != len(self.spatial) or any(b is None for b in boxes):
                raise self.bad("at most one spatial predicate, besides bounding boxes, "
                               "can be combined")
            x1, y1 = max(b[0] for b in boxes), max(b[1] for b in boxes)
            x2, y2 = min(b[2] for b in boxes), min(b[3] for b in boxes)
            if x1 > x2 or y1 > y2:  # disjoint boxes: nothing matches
                return {"where": "1=0"}
            self.spatial = [("esriSpatialRelIntersects", self._unswapped_box(x1, y1, x2, y2),
                             None)]
        relation, geometry, extra = self.spatial[0]
        geometry.pop("bbox", None)
        params = {"geometry": orjson.dumps(geometry).decode(), "spatialRel": relation,
                  "inSR": in_sr, "geometryType": _esri_type(geometry)}
        if extra is not None:
            params["distance"], params["units"] = repr(extra[0]), extra[1]
        return params

    def _unswapped_box(self, x1: float, y1: float, x2: float, y2: float) -> dict[str, Any]:
        swap, self.swap_xy = self.swap_xy, False
        try:
            return self._box(x1, y1, x2, y2)
        finally:
            self.swap_xy = swap

    # --- everything else: a where clause --------------------------------------------------
    def condition(self, node: Any) -> str:
        if isinstance(node, ast.And | ast.Or):
            operator = "AND" if isinstance(node, ast.And) else "OR"
            return f"({self.condition(node.lhs)} {operator} {self.condition(node.rhs)})"
        if isinstance(node, ast.Not):
            return f"NOT ({self.condition(node.sub_node)})"
        if type(node) in COMPARISONS:
            return f"{self.value(node.lhs)} {COMPARISONS[type(node)]} {self.value(node.rhs)}"
        if isinstance(node, ast.Between):
            word = "NOT BETWEEN" if node.not_ else "BETWEEN"
            return f"{self.value(node.lhs)} {word} {self.value(node.low)} AND " \
                   f"{self.value(node.high)}"
        if isinstance(node, ast.Like):
            return self._like(node)
        if isinstance(node, ast.In):
            items = ", ".join(self.value(item) for item in node.sub_nodes)
            return f"{self.value(node.lhs)} {'NOT IN' if node.not_ else 'IN'} ({items})"
        if isinstance(node, ast.IsNull):
            return f"{self.value(node.lhs)} IS {'NOT NULL' if node.not_ else 'NULL'}"
        if type(node) in TEMPORAL:
            return f"{self.value(node.lhs)} {TEMPORAL[type(node)]} {self.value(node.rhs)}"
        if isinstance(node, ast.TimeDuring | ast.TimeOverlaps | ast.TimeBegunBy
                      ) and isinstance(node.rhs, values.Interval):
            start, end = node.rhs.start, node.rhs.end
            return f"{self.value(node.lhs)} BETWEEN {self.value(start)} AND {self.value(end)}"
        if isinstance(node, ast.Include):
            return "1=1"
        if isinstance(node, bool):
            return "1=1" if node else "1=0"
        if type(node) in SPATIAL_RELATIONS or isinstance(node, ast.BBox | ast.DistanceWithin
                                                          | ast.GeometryDisjoint):
            raise self.bad("spatial predicates can only be combined with AND at the top level")
        raise self.bad(f"{_name(node)} is not supported")

    def _like(self, node: ast.Like) -> str:
        pattern, escaped = [], False
        needs_escape = False
        for char in str(node.pattern):
            if escaped:
                escaped = False
                if char in "%_\\":
                    needs_escape = True
                    pattern.append("\\" + char)
                else:
                    pattern.append(char)
            elif node.escapechar and char == node.escapechar:
                escaped = True
            elif char == node.wildcard:
                pattern.append("%")
            elif char == node.singlechar:
                pattern.append("_")
            elif char in "%_\\":
                needs_escape = True
                pattern.append("\\" + char)
            else:
                pattern.append(char)
        text = _text("".join(pattern))
        lhs = self.value(node.lhs)
        if node.nocase:
            lhs, text = f"UPPER({lhs})", f"UPPER({text})"
        clause = f"{lhs} {'NOT LIKE' if node.not_ else 'LIKE'} {text}"
        return clause + (" ESCAPE '\\'" if needs_escape else "")

    def value(self, node: Any) -> str:
        if isinstance(node, ast.Attribute):
            found = self.schema.field(str(node.name))
            if found is None:
                raise self.bad(f"{node.name!r} is not a field of this layer")
            # Always quoted: a field may be named like an SQL keyword ("when", "order").
            return _quoted_name(found.name)
        if type(node) in ARITHMETIC:
            return f"({self.value(node.lhs)} {ARITHMETIC[type(node)]} {self.value(node.rhs)})"
        if isinstance(node, ast.Function):
            function = FUNCTIONS.get(node.name.lower())
            if function is None or len(node.arguments) != 1:
                raise self.bad(f"function {node.name!r} is not supported")
            return f"{function}({self.value(node.arguments[0])})"
        if node is None:
            return "NULL"
        if isinstance(node, bool):
            raise self.bad("boolean literals are not supported: the layers have no boolean "
                           "fields")
        if isinstance(node, int | float):
            if isinstance(node, float) and not math.isfinite(node):
                raise self.bad(f"{node!r} is not a number")
            return repr(node) if node >= 0 else f"({node!r})"
        if isinstance(node, str):
            return _text(node)
        if isinstance(node, dt.datetime):
            moment = node.astimezone(dt.UTC) if node.tzinfo else node
            return f"timestamp '{moment.strftime('%Y-%m-%d %H:%M:%S')}'"
        if isinstance(node, dt.date):
            return f"date '{node.isoformat()}'"
        raise self.bad(f"{_name(node)} is not supported as a value")


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _quoted_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _name(node: Any) -> str:
    return type(node).__name__


def _swapped(coordinates: Any) -> Any:
    if isinstance(coordinates, list | tuple) and coordinates and isinstance(
            coordinates[0], int | float):
        return [coordinates[1], coordinates[0], *coordinates[2:]]
    if isinstance(coordinates, list | tuple):
        return [_swapped(c) for c in coordinates]
    return coordinates


def _esri_type(geometry: dict[str, Any]) -> str:
    kind = str(geometry.get("type"))
    return {"Point": "esriGeometryPoint", "MultiPoint": "esriGeometryMultipoint",
            "LineString": "esriGeometryPolyline", "MultiLineString": "esriGeometryPolyline",
            }.get(kind, "esriGeometryPolygon")
