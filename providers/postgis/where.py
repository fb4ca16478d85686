"""A checked ``where`` (or ``havingClause``) tree, emitted as PostgreSQL with bound parameters.

The tree comes from ``koop_app.query.where`` after its checks (fields of the layer, allowed
nodes, agreeing kinds, sizes), so this module only writes each node the way PostgreSQL says
it, keeping where.py's meaning:

- text compares without case unless the dataset is case-sensitive (``lower()`` on both sides;
  ``LIKE`` with ``ESCAPE ''``, because PostgreSQL's LIKE would otherwise read ``\\`` as an
  escape); ordering comparisons on text use code point order (``COLLATE "C"``), as DuckDB;
- a quoted literal beside a number is a number, beside a date a date;
- dates stay timestamps where they are compared (a date column against a bound timestamp: the
  table's B-tree index serves it), and become epoch milliseconds in arithmetic, as where.py's
  dates are milliseconds;
- ``/`` divides as doubles and a division by zero is NULL, as in DuckDB.

Every literal is a ``%s`` parameter; nothing from the request is pasted into SQL text. A node
this module cannot write is a 400, never a clause silently dropped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlglot import exp

from koop_app.data.values import parse_date_ms
from koop_app.errors import InvalidParameterError
from koop_app.query import strings
from koop_app.query.where import (
    DATE_KIND,
    EXTRACT_PARTS,
    MS_PER_DAY,
    NUMBER,
    TEXT,
    literal_number,
    text_literal,
)

from .catalog import Column

BOOL = "condition"
NUMBER_TEXT = r"^\s*[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"
INTEGER_TEXT = r"^\s*[-+]?[0-9]+\s*$"
DATE_TEXT = r"^\s*[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
AGGREGATES = {exp.Count: "count", exp.Sum: "sum", exp.Min: "min", exp.Max: "max",
              exp.Avg: "avg", exp.Stddev: "stddev_samp", exp.StddevSamp: "stddev_samp",
              exp.Variance: "var_samp"}
_KIND = {"esriFieldTypeDate": DATE_KIND, "esriFieldTypeString": TEXT}


@dataclass(frozen=True)
class Sql:
    """An emitted expression, its parameters in order, and what it yields."""

    text: str
    params: tuple[Any, ...] = ()
    kind: str | None = None
    literal: str | None = None  # the text of a quoted literal bound as this one %s
    moment: int | None = None  # a date literal's epoch ms (bound as a timestamp)
    ms: bool = False  # a date as epoch milliseconds (a number), not a timestamp


class Unsupported(Exception):
    pass


def _utc(ms: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)


def _date_literal(ms: int) -> Sql:
    return Sql("CAST(%s AS timestamptz)", (_utc(ms),), DATE_KIND, moment=ms)


def as_ms(value: Sql) -> Sql:
    """A date value as epoch milliseconds (double precision)."""
    if value.ms or value.kind != DATE_KIND:
        return value
    if value.moment is not None:
        return Sql("CAST(%s AS double precision)", (value.moment,), DATE_KIND, ms=True)
    return Sql(f"(extract(epoch FROM {value.text}) * 1000)", value.params, DATE_KIND, ms=True)


def as_timestamp(value: Sql) -> Sql:
    if not value.ms:
        return value
    return Sql(f"to_timestamp(({value.text}) / 1000.0)", value.params, DATE_KIND)


def _join(template: str, *parts: Sql, kind: str | None = None, ms: bool = False) -> Sql:
    """``template`` filled with the parts' texts in order, their parameters in that order."""
    params: list[Any] = []
    for part in parts:
        params.extend(part.params)
    return Sql(template.format(*(p.text for p in parts)), tuple(params), kind, ms=ms)


class Emitter:
    def __init__(self, columns: Mapping[str, Column], *, case_sensitive: bool,
                 aggregates: bool = False, now: dt.datetime | None = None) -> None:
        self.columns = {name.lower(): column for name, column in columns.items()}
        self.case_sensitive = case_sensitive
        self.aggregates = aggregates
        self.now = now or dt.datetime.now(dt.UTC)

    def emit(self, node: exp.Expression) -> Sql:
        handler = HANDLERS.get(type(node))
        if handler is None and self.aggregates and type(node) in AGGREGATES:
            return self._aggregate(node)
        if handler is None:
            raise Unsupported(f"'{node.key}' cannot be sent to PostgreSQL")
        return handler(self, node)

    # --- leaves ----------------------------------------------------------------------------

    def column(self, node: exp.Column) -> Sql:
        found = self.columns.get(node.name.lower())
        if found is None:
            raise Unsupported(f"{node.name!r} is not a field of this layer")
        kind = _KIND.get(found.esri, NUMBER)
        return Sql(found.value_sql(), (), kind)

    def literal(self, node: exp.Literal) -> Sql:
        if node.is_string:
            return Sql("CAST(%s AS text)", (node.this,), TEXT, literal=node.this)
        return Sql("%s", (literal_number(node.this),), NUMBER)

    def beside(self, node: exp.Expression, kind: str | None) -> Sql:
        """A value beside one of ``kind``: a quoted literal takes that kind."""
        text = text_literal(node)
        if text is None:
            return self.emit(node)
        if kind == DATE_KIND:
            return _date_literal(_date_ms(text))
        if kind == NUMBER:
            return Sql("%s", (literal_number(text),), NUMBER)
        return Sql("CAST(%s AS text)", (text,), TEXT, literal=text)

    def pair(self, a: exp.Expression, b: exp.Expression) -> tuple[Sql, Sql]:
        if text_literal(a) is not None and text_literal(b) is None:
            right = self.emit(b)
            return self.beside(a, right.kind), right
        left = self.emit(a)
        return left, self.beside(b, left.kind)

    # --- comparisons -----------------------------------------------------------------------

    def folded(self, value: Sql) -> Sql:
        return value if self.case_sensitive else _join("lower({0})", value, kind=TEXT)

    def compare(self, operator: str, node: exp.Expression) -> Sql:
        left, right = self.pair(node.this, node.expression)
        if DATE_KIND in (left.kind, right.kind):
            if left.ms or right.ms:
                left, right = as_ms(left), as_ms(right)
            return _join(f"({{0}} {operator} {{1}})", left, right, kind=BOOL)
        if left.kind != TEXT or right.kind != TEXT:
            return _join(f"({{0}} {operator} {{1}})", left, right, kind=BOOL)
        literal = right if right.literal is not None else left if left.literal is not None \
            else None
        plain = self.case_sensitive or (literal is not None
                                        and not strings.cased(literal.literal or ""))
        if not plain:
            left, right = _join("lower({0})", left), _join("lower({0})", right)
        collate = ' COLLATE "C"' if operator not in ("=", "<>") else ""
        return _join(f"({{0}}{collate} {operator} {{1}})", left, right, kind=BOOL)

    def in_list(self, node: exp.In) -> Sql:
        if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
            raise Unsupported("IN takes a list of values only")
        target = self.emit(node.this)
        values = [self.beside(item, target.kind) for item in node.expressions]
        if target.kind == DATE_KIND and (target.ms or any(v.ms for v in values)):
            target, values = as_ms(target), [as_ms(v) for v in values]
        nocase = (not self.case_sensitive and target.kind == TEXT
                  and not all(v.literal is not None and not strings.cased(v.literal)
                              for v in values))
        if nocase:
            target, values = _join("lower({0})", target), [_join("lower({0})", v)
                                                          for v in values]
        holes = _holes(len(values), ", ", start=1)
        return _join(f"({{0}} IN ({holes}))", target, *values, kind=BOOL)

    def between(self, node: exp.Between) -> Sql:
        target = self.emit(node.this)
        low = self.beside(node.args["low"], target.kind)
        high = self.beside(node.args["high"], target.kind)
        parts = [target, low, high]
        collate = ""
        if target.kind == DATE_KIND and any(p.ms for p in parts):
            parts = [as_ms(p) for p in parts]
        elif target.kind == TEXT:
            collate = ' COLLATE "C"'
            if not self.case_sensitive and not all(
                    p.literal is not None and not strings.cased(p.literal) for p in parts[1:]):
                parts = [_join("lower({0})", p) for p in parts]
        return _join(f"({{0}}{collate} BETWEEN {{1}} AND {{2}})", *parts, kind=BOOL)

    def like(self, node: exp.Like, escape: str | None = None) -> Sql:
        text = self.emit(node.this)
        pattern = self.emit(node.expression)
        pattern_text = text_literal(node.expression)
        if not self.case_sensitive and not (pattern_text is not None
                                            and not strings.cased(pattern_text)):
            text, pattern = _join("lower({0})", text), _join("lower({0})", pattern)
        if escape is None:
            return _join("({0} LIKE {1} ESCAPE '')", text, pattern, kind=BOOL)
        return _join("({0} LIKE {1} ESCAPE {2})", text, pattern, _pattern(escape),
                     kind=BOOL)

    def escape(self, node: exp.Escape) -> Sql:
        like = node.this
        char = node.expression
        if not isinstance(like, exp.Like) or not (isinstance(char, exp.Literal)
                                                  and char.is_string and len(char.this) == 1):
            raise Unsupported("ESCAPE takes one character after LIKE")
        return self.like(like, char.this)

    def is_null(self, node: exp.Is) -> Sql:
        if not isinstance(node.expression, exp.Null):
            raise Unsupported("IS takes NULL only")
        return _join("({0} IS NULL)", self.emit(node.this), kind=BOOL)

    def logical(self, node: exp.Expression) -> Sql:
        operator = "AND" if isinstance(node, exp.And) else "OR"
        operands: list[exp.Expression] = []
        pending = [node]
        while pending:  # long chains are left-deep trees: a loop, not recursion
            current = pending.pop()
            if type(current) is type(node):
                pending.extend([current.expression, current.this])
            else:
                operands.append(current)
        parts = [self.emit(o) for o in operands]
        holes = _holes(len(parts), f" {operator} ")
        return _join(f"({holes})", *parts, kind=BOOL)

    # --- values ----------------------------------------------------------------------------

    def arithmetic(self, node: exp.Expression) -> Sql:
        operator = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/"}[type(node)]
        left, right = self.emit(node.this), self.emit(node.expression)
        dated = DATE_KIND in (left.kind, right.kind)
        left, right = as_ms(left), as_ms(right)
        if operator == "/":
            return _join("(CAST({0} AS double precision) / NULLIF({1}, 0))", left, right,
                         kind=NUMBER)
        kind = DATE_KIND if dated and operator in "+-" else NUMBER
        return _join(f"({{0}} {operator} {{1}})", left, right, kind=kind, ms=kind == DATE_KIND)

    def cast(self, node: exp.Cast) -> Sql:
        target = node.to.this
        inner = node.this
        types = exp.DataType.Type
        if target in (types.DATE, types.TIMESTAMP, types.DATETIME, types.TIMESTAMPTZ):
            if isinstance(inner, exp.Literal) and inner.is_string:
                ms = _date_ms(inner.this)
                if target == types.DATE:
                    ms -= ms % MS_PER_DAY
                return _date_literal(ms)
            value = self.emit(inner)
            if value.kind == TEXT:
                value = _join("CASE WHEN {0} ~ {1} THEN CAST({2} AS timestamp) END", value,
                              _pattern(DATE_TEXT), value, kind=DATE_KIND)
            value = as_timestamp(value)
            if target == types.DATE:
                return _join("date_trunc('day', {0})", value, kind=DATE_KIND)
            return replace(value, kind=DATE_KIND, literal=None)
        value = self.emit(inner)
        if target in exp.DataType.TEXT_TYPES:
            if value.kind == DATE_KIND:
                return _join("to_char({0}, 'YYYY-MM-DD HH24:MI:SS')", as_timestamp(value),
                             kind=TEXT)
            return _join("CAST({0} AS text)", value, kind=TEXT)
        value = as_ms(value)
        if target in exp.DataType.INTEGER_TYPES:
            if value.kind == TEXT:
                return _join("CASE WHEN {0} ~ {1} THEN CAST({2} AS bigint) END", value,
                             _pattern(INTEGER_TEXT), value, kind=NUMBER)
            return _join("CAST({0} AS bigint)", value, kind=NUMBER)
        if target in exp.DataType.REAL_TYPES:
            if value.kind == TEXT:
                return _join("CASE WHEN {0} ~ {1} THEN CAST({2} AS double precision) END",
                             value, _pattern(NUMBER_TEXT), value, kind=NUMBER)
            return _join("CAST({0} AS double precision)", value, kind=NUMBER)
        raise Unsupported(f"CAST to {node.to.sql()} is not supported")

    def function(self, template: str, kind: str, *names: str) -> Callable[[exp.Expression], Sql]:
        def emit(node: exp.Expression) -> Sql:
            parts = [as_ms(self.emit(node.args[name])) for name in names]
            return _join(template, *parts, kind=kind)

        return emit

    def round_(self, node: exp.Round) -> Sql:
        value = as_ms(self.emit(node.this))
        digits = node.args.get("decimals")
        places = self.emit(digits) if digits is not None else Sql("0")
        return _join("round(CAST({0} AS numeric), CAST({1} AS integer))", value, places,
                     kind=NUMBER)

    def log(self, node: exp.Log) -> Sql:
        if node.expression is None:
            return _join("ln({0})", self.emit(node.this), kind=NUMBER)
        if isinstance(node.this, exp.Literal) and node.this.this == "10":
            return _join("log({0})", self.emit(node.expression), kind=NUMBER)
        raise Unsupported("LOG takes one argument (use LOG10 for base 10)")

    def anonymous(self, node: exp.Anonymous) -> Sql:
        name = node.name.upper()
        args = [as_ms(self.emit(a)) for a in node.expressions]
        if name == "TRUNCATE" and len(args) in (1, 2):
            digits = args[1] if len(args) == 2 else Sql("0")
            return _join("trunc(CAST({0} AS numeric), CAST({1} AS integer))", args[0], digits,
                         kind=NUMBER)
        if name == "LOG10" and len(args) == 1:
            return _join("log({0})", args[0], kind=NUMBER)
        raise Unsupported(f"function {name}() is not supported")

    def extract(self, node: exp.Extract) -> Sql:
        part = node.this.name.upper()
        if part not in EXTRACT_PARTS:
            raise Unsupported(f"EXTRACT({part}) is not supported")
        value = as_timestamp(self.emit(node.expression))
        return _join(f"CAST(floor(extract({part.lower()} FROM {{0}})) AS bigint)", value,
                     kind=NUMBER)

    def trim(self, node: exp.Trim) -> Sql:
        position = str(node.args.get("position") or "BOTH").upper()
        function = {"BOTH": "btrim", "LEADING": "ltrim", "TRAILING": "rtrim"}.get(position)
        if function is None:
            raise Unsupported(f"TRIM {position} is not supported")
        text = self.emit(node.this)
        characters = node.args.get("expression")
        if characters is None:
            return _join(f"{function}({{0}})", text, kind=TEXT)
        return _join(f"{function}({{0}}, {{1}})", text, self.emit(characters), kind=TEXT)

    def substring(self, node: exp.Substring) -> Sql:
        text = self.emit(node.this)
        start = node.args.get("start")
        length = node.args.get("length")
        begin = _join("CAST({0} AS integer)", self.emit(start)) if start is not None \
            else Sql("1")
        if length is None:
            return _join("substr({0}, {1})", text, begin, kind=TEXT)
        count = _join("CAST({0} AS integer)", self.emit(length))
        return _join("substr({0}, {1}, {2})", text, begin, count, kind=TEXT)

    def concat(self, node: exp.Expression) -> Sql:
        if isinstance(node, exp.Concat):
            parts = list(node.expressions)
        else:
            parts, current = [], node
            while isinstance(current, exp.DPipe):
                parts.append(current.expression)
                current = current.this
            parts.append(current)
            parts.reverse()
        values = [as_ms(self.emit(p)) for p in parts]
        holes = _holes(len(values), ", ")
        return _join(f"concat({holes})", *values, kind=TEXT)

    def coalesce(self, node: exp.Coalesce) -> Sql:
        values = [self.emit(node.this)] + [self.emit(x) for x in node.expressions]
        kind = next((v.kind for v in values if v.kind is not None), None)
        if any(v.ms for v in values):
            values = [as_ms(v) for v in values]
        holes = _holes(len(values), ", ")
        return _join(f"coalesce({holes})", *values, kind=kind,
                     ms=kind == DATE_KIND and values[0].ms)

    def nullif(self, node: exp.Nullif) -> Sql:
        left, right = self.pair(node.this, node.expression)
        if left.ms or right.ms:
            left, right = as_ms(left), as_ms(right)
        kind = left.kind or right.kind
        return _join("NULLIF({0}, {1})", left, right, kind=kind, ms=left.ms)

    def _aggregate(self, node: exp.Expression) -> Sql:
        function = AGGREGATES[type(node)]
        if isinstance(node.this, exp.Star):
            return Sql("count(*)", (), NUMBER)
        value = self.emit(node.this)
        if function in ("min", "max"):
            if value.kind == TEXT:
                return _join(f'{function}({{0}} COLLATE "C")', value, kind=TEXT)
            return _join(f"{function}({{0}})", value, kind=value.kind, ms=value.ms)
        return _join(f"{function}({{0}})", as_ms(value), kind=NUMBER)


def _holes(count: int, separator: str, start: int = 0) -> str:
    """Format fields {start}..{start+count-1} joined by ``separator``, for _join."""
    return separator.join(f"{{{i}}}" for i in range(start, start + count))


def _pattern(regex: str) -> Sql:
    return Sql("CAST(%s AS text)", (regex,))


def _date_ms(text: str) -> int:
    value = parse_date_ms(text.strip())
    if value is None:
        raise Unsupported(f"{text!r} is not a date")
    return value


def _paren(e: Emitter, node: exp.Paren) -> Sql:
    inner = e.emit(node.this)
    return replace(inner, text=f"({inner.text})", literal=None)


def _current(e: Emitter, node: exp.Expression) -> Sql:
    moment = e.now
    if isinstance(node, exp.CurrentDate):
        moment = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return _date_literal(int(moment.timestamp() * 1000))


def _comparison(operator: str) -> Callable[[Emitter, Any], Sql]:
    return lambda e, node: e.compare(operator, node)


def _simple(template: str, kind: str, *names: str) -> Callable[[Emitter, Any], Sql]:
    return lambda e, node: e.function(template, kind, *names)(node)


HANDLERS: dict[type[exp.Expression], Callable[[Emitter, Any], Sql]] = {
    exp.Column: Emitter.column,
    exp.Literal: Emitter.literal,
    exp.Null: lambda e, n: Sql("NULL"),
    exp.Boolean: lambda e, n: Sql("TRUE" if n.this else "FALSE", (), BOOL),
    exp.Paren: _paren,
    exp.Not: lambda e, n: _join("(NOT {0})", e.emit(n.this), kind=BOOL),
    exp.Neg: lambda e, n: _join("(-{0})", e.emit(n.this), kind=NUMBER),
    exp.And: Emitter.logical,
    exp.Or: Emitter.logical,
    exp.EQ: _comparison("="),
    exp.NEQ: _comparison("<>"),
    exp.GT: _comparison(">"),
    exp.GTE: _comparison(">="),
    exp.LT: _comparison("<"),
    exp.LTE: _comparison("<="),
    exp.Add: Emitter.arithmetic,
    exp.Sub: Emitter.arithmetic,
    exp.Mul: Emitter.arithmetic,
    exp.Div: Emitter.arithmetic,
    exp.Mod: _simple("mod(CAST({0} AS numeric), NULLIF(CAST({1} AS numeric), 0))", NUMBER,
                     "this", "expression"),
    exp.Like: Emitter.like,
    exp.Escape: Emitter.escape,
    exp.In: Emitter.in_list,
    exp.Between: Emitter.between,
    exp.Is: Emitter.is_null,
    exp.Cast: Emitter.cast,
    exp.Upper: _simple("upper({0})", TEXT, "this"),
    exp.Lower: _simple("lower({0})", TEXT, "this"),
    exp.Abs: _simple("abs({0})", NUMBER, "this"),
    exp.Ceil: _simple("ceil({0})", NUMBER, "this"),
    exp.Floor: _simple("floor({0})", NUMBER, "this"),
    exp.Round: Emitter.round_,
    exp.Pow: _simple("power({0}, {1})", NUMBER, "this", "expression"),
    exp.Log: Emitter.log,
    exp.Length: _simple("char_length({0})", NUMBER, "this"),
    exp.Concat: Emitter.concat,
    exp.DPipe: Emitter.concat,
    exp.StrPosition: _simple("strpos({0}, {1})", NUMBER, "this", "substr"),
    exp.Substring: Emitter.substring,
    exp.Trim: Emitter.trim,
    exp.Coalesce: Emitter.coalesce,
    exp.Nullif: Emitter.nullif,
    exp.Extract: Emitter.extract,
    exp.CurrentDate: _current,
    exp.CurrentTimestamp: _current,
    exp.Anonymous: Emitter.anonymous,
}


def emit_condition(tree: exp.Expression, columns: Mapping[str, Column], *,
                   case_sensitive: bool, parameter: str = "where",
                   aggregates: bool = False) -> Sql:
    """The PostgreSQL condition of a checked tree; InvalidParameterError when it cannot be."""
    try:
        out = Emitter(columns, case_sensitive=case_sensitive, aggregates=aggregates).emit(tree)
    except Unsupported as exc:
        raise InvalidParameterError(parameter, f"{exc} (PostgreSQL layer)") from None
    except RecursionError:
        raise InvalidParameterError(parameter, "the clause is too complex") from None
    if out.kind != BOOL:
        raise InvalidParameterError(parameter, "the clause is not a condition")
    return out
