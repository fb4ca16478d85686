"""A checked ``where`` tree as an Optic expression, in the serialized plan form of /v1/rows.

An Optic plan travels as JSON (what ``plan.export()`` writes and ``op.import`` reads)::

    {"$optic": {"ns": "op", "fn": "operators", "args": [
        {"ns": "op", "fn": "from-view", "args": ["main", "wells", null, null]},
        {"ns": "op", "fn": "where", "args": [{"ns": "op", "fn": "eq", "args": [
            {"ns": "op", "fn": "col", "args": ["state"]}, "CO"]}]},
        {"ns": "op", "fn": "offset-limit", "args": [0, 10]}]}}

Values from the request are JSON values inside that tree, never text of a program. SQL's NULL
logic is kept: a comparison with a missing column is neither true nor false, so ``NOT c`` is
emitted as "c is false": every column of ``c`` defined and ``op.not(c)``. Text compares without
case unless the dataset asks for case (``fn:lower-case`` on both sides), as the engine does.
Anything not listed here is a 400 naming it: rows mode never pulls a whole view to filter it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from koop_app.data.schema import DATE, DOUBLE, INTEGER, OID, SMALL_INTEGER, STRING, LayerSchema
from koop_app.data.values import parse_date_ms
from koop_app.errors import InvalidParameterError
from koop_app.query import strings
from koop_app.query.where import literal_number, text_literal, unparen

Node = dict[str, Any]
TEXT, NUMBER, DATE_KIND = "text", "number", "date"
_KINDS = {STRING: TEXT, INTEGER: NUMBER, SMALL_INTEGER: NUMBER, DOUBLE: NUMBER, OID: NUMBER,
          DATE: DATE_KIND}
_COMPARISONS = {exp.EQ: "eq", exp.NEQ: "ne", exp.GT: "gt", exp.GTE: "ge", exp.LT: "lt",
                exp.LTE: "le"}
_ARITHMETIC = {exp.Add: "add", exp.Sub: "subtract", exp.Mul: "multiply", exp.Div: "divide",
               exp.Mod: "modulo"}
_FUNCTIONS: dict[type[exp.Expression], tuple[str, str]] = {
    exp.Upper: ("upper-case", TEXT), exp.Lower: ("lower-case", TEXT),
    exp.Length: ("string-length", NUMBER), exp.Abs: ("abs", NUMBER),
    exp.Ceil: ("ceiling", NUMBER), exp.Floor: ("floor", NUMBER),
}
# XML Schema regular expressions (fn:matches): these characters are escaped in a LIKE pattern.
_REGEX_META = set("\\|.-^?*+{}()[]$")


def op(fn: str, *args: Any) -> Node:
    return {"ns": "op", "fn": fn, "args": list(args)}


def fn(name: str, *args: Any) -> Node:
    return {"ns": "fn", "fn": name, "args": list(args)}


def col(name: str) -> Node:
    return op("col", name)


def date_time(ms: int) -> Node:
    """An xs:dateTime in UTC from epoch milliseconds."""
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)
    return {"ns": "xs", "fn": "dateTime", "args": [moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")]}


def plan(*operators: Node) -> dict[str, Any]:
    return {"$optic": op("operators", *operators)}


class Unsupported(Exception):
    """A construct with no Optic equivalent here."""


@dataclass(frozen=True)
class Value:
    node: Any
    kind: str | None
    columns: frozenset[str]


class OpticWhere:
    """Emits a tree from ``checked_tree`` (already checked: fields exist, kinds agree)."""

    def __init__(self, schema: LayerSchema, *, case_sensitive: bool = False,
                 column_types: Mapping[str, str] | None = None) -> None:
        self.schema = schema
        self.case_sensitive = case_sensitive
        # MarkLogic's type of each column: xs:date columns are compared as xs:dateTime.
        self.column_types = dict(column_types or {})

    def emit(self, tree: exp.Expression) -> Node:
        try:
            return self.condition(tree, negated=False)
        except Unsupported as exc:
            raise InvalidParameterError(
                "where", f"{exc} cannot be sent to MarkLogic's Optic API") from None

    # conditions: ``negated`` asks for "definitely false" (SQL's NOT), not "not true"
    def condition(self, node: exp.Expression, negated: bool) -> Node:
        if isinstance(node, exp.Paren):
            return self.condition(node.this, negated)
        if isinstance(node, exp.Not):
            return self.condition(node.this, not negated)
        if isinstance(node, (exp.And, exp.Or)):
            parts = [self.condition(part, negated) for part in _flatten(node, type(node))]
            # De Morgan: NOT (a AND b) is false-a OR false-b.
            conjunction = isinstance(node, exp.And) != negated
            return op("and" if conjunction else "or", *parts)
        if isinstance(node, exp.Boolean):
            truth = bool(node.this) != negated
            return op("eq", 1, 1 if truth else 0)
        if isinstance(node, exp.Is):
            target = unparen(node.this)
            if not isinstance(target, exp.Column):
                raise Unsupported("IS NULL of an expression")
            defined = op("is-defined", col(self._field(target)))
            return defined if negated else op("not", defined)
        if isinstance(node, exp.Escape):
            like = node.this
            escape = node.expression
            if not isinstance(like, exp.Like) or not isinstance(escape, exp.Literal):
                raise Unsupported("ESCAPE")
            return self._guarded(self._like(like, escape.this), negated)
        if isinstance(node, exp.Like):
            return self._guarded(self._like(node, None), negated)
        if type(node) in _COMPARISONS:
            return self._guarded(self._compare(_COMPARISONS[type(node)], node.this,
                                               node.expression), negated)
        if isinstance(node, exp.In):
            target = node.this
            terms = [self._compare("eq", target, item) for item in node.expressions]
            either = terms[0][0] if len(terms) == 1 else op("or", *(t[0] for t in terms))
            return self._guarded((either, frozenset().union(*(t[1] for t in terms))), negated)
        if isinstance(node, exp.Between):
            # Without case unless both bounds are texts with no letter that has a case.
            bounds = [text_literal(node.args[k]) for k in ("low", "high")]
            folded = not all(b is not None and not strings.cased(b) for b in bounds)
            low = self._compare("ge", node.this, node.args["low"], folded=folded)
            high = self._compare("le", node.this, node.args["high"], folded=folded)
            return self._guarded((op("and", low[0], high[0]), low[1] | high[1]), negated)
        raise Unsupported(_describe(node))

    def _guarded(self, condition: tuple[Node, frozenset[str]] | Node, negated: bool) -> Node:
        node, columns = condition if isinstance(condition, tuple) else (condition, frozenset())
        if not negated:
            return node
        defined = [op("is-defined", col(name)) for name in sorted(columns)]
        return op("and", *defined, op("not", node)) if defined else op("not", node)

    def _compare(self, operator: str, a: exp.Expression, b: exp.Expression, *,
                 folded: bool = False) -> tuple[Node, frozenset[str]]:
        if isinstance(unparen(a), exp.Null) or isinstance(unparen(b), exp.Null):
            raise Unsupported("a comparison with NULL (use IS NULL)")
        if text_literal(a) is not None and text_literal(b) is None:
            right = self.value(b)
            left = self._beside(a, right.kind)
        else:
            left = self.value(a)
            right = self._beside(b, left.kind)
        columns = left.columns | right.columns
        literal = right.node if isinstance(right.node, str) else left.node
        if TEXT in (left.kind, right.kind) and not self.case_sensitive and (
                folded or not isinstance(literal, str) or strings.cased(literal)):
            return op(operator, self._folded(left), self._folded(right)), columns
        # Exact when the dataset has case, or beside a text with no letter that has a case
        # (as the engine does: the source's indexes then answer it).
        return op(operator, left.node, right.node), columns

    def _folded(self, value: Value) -> Any:
        if isinstance(value.node, str):
            return value.node.lower()
        return fn("lower-case", value.node)

    def _like(self, node: exp.Like, escape: str | None) -> tuple[Node, frozenset[str]]:
        pattern = text_literal(node.expression)
        if pattern is None:
            raise Unsupported("LIKE with a pattern that is not quoted text")
        target = self.value(node.this)
        flags = "s" if self.case_sensitive or not strings.cased(pattern) else "is"
        return fn("matches", target.node, like_regex(pattern, escape), flags), target.columns

    # values
    def value(self, node: exp.Expression) -> Value:
        node = unparen(node)
        if isinstance(node, exp.Column):
            name = self._field(node)
            kind = _KINDS.get(self.schema.field(name).type)  # type: ignore[union-attr]
            ml_type = self.column_types.get(name, "")
            if kind == DATE_KIND and ml_type == "xs:date":
                return Value({"ns": "xs", "fn": "dateTime", "args": [col(name)]}, kind,
                             frozenset([name]))
            return Value(col(name), kind, frozenset([name]))
        if isinstance(node, exp.Literal):
            if node.is_string:
                return Value(node.this, TEXT, frozenset())
            return Value(literal_number(node.this), NUMBER, frozenset())
        if isinstance(node, exp.Neg):
            inner = self.value(node.this)
            if isinstance(inner.node, (int, float)):
                return Value(-inner.node, NUMBER, frozenset())
            return Value(op("multiply", -1, inner.node), NUMBER, inner.columns)
        if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal) and \
                node.this.is_string and node.to.this in (
                    exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP,
                    exp.DataType.Type.DATETIME):
            ms = parse_date_ms(node.this.this.strip())
            if ms is None:
                raise Unsupported(f"the date {node.this.this!r}")
            if node.to.this == exp.DataType.Type.DATE:
                ms -= ms % 86_400_000
            return Value(date_time(ms), DATE_KIND, frozenset())
        if type(node) in _ARITHMETIC:
            left, right = self.value(node.this), self.value(node.expression)
            if DATE_KIND in (left.kind, right.kind):
                raise Unsupported("arithmetic on dates")
            return Value(op(_ARITHMETIC[type(node)], left.node, right.node), NUMBER,
                         left.columns | right.columns)
        if type(node) in _FUNCTIONS:
            name, kind = _FUNCTIONS[type(node)]
            inner = self.value(node.this)
            return Value(fn(name, inner.node), kind, inner.columns)
        if isinstance(node, exp.Substring):
            text = self.value(node.this)
            args = [text.node]
            columns = set(text.columns)
            for key in ("start", "length"):
                part = node.args.get(key)
                if part is None:
                    if key == "start":
                        args.append(1)
                    continue
                value = self.value(part)
                args.append(value.node)
                columns |= value.columns
            return Value(fn("substring", *args), TEXT, frozenset(columns))
        if isinstance(node, (exp.Concat, exp.DPipe)):
            parts = node.expressions if isinstance(node, exp.Concat) else [node.this,
                                                                           node.expression]
            values = [self.value(part) for part in parts]
            return Value(fn("concat", *(v.node for v in values)), TEXT,
                         frozenset().union(*(v.columns for v in values)))
        raise Unsupported(_describe(node))

    def _beside(self, node: exp.Expression, kind: str | None) -> Value:
        """A quoted literal beside a number is a number, beside a date a date (as the engine)."""
        text = text_literal(node)
        if text is None:
            return self.value(node)
        if kind == NUMBER:
            return Value(literal_number(text), NUMBER, frozenset())
        if kind == DATE_KIND:
            ms = parse_date_ms(text.strip())
            if ms is None:
                raise Unsupported(f"the date {text!r}")
            return Value(date_time(ms), DATE_KIND, frozenset())
        return Value(text, TEXT, frozenset())

    def _field(self, node: exp.Column) -> str:
        found = self.schema.field(node.name)
        assert found is not None  # checked_tree checked it
        return found.name


def like_regex(pattern: str, escape: str | None = None) -> str:
    """A LIKE pattern as an anchored XML Schema regular expression for fn:matches."""
    out = ["^"]
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if escape is not None and char == escape and i + 1 < len(pattern):
            i += 1
            char = pattern[i]
            out.append("\\" + char if char in _REGEX_META else char)
        elif char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        else:
            out.append("\\" + char if char in _REGEX_META else char)
        i += 1
    out.append("$")
    return "".join(out)




def _flatten(node: exp.Expression, kind: type[exp.Expression]) -> list[exp.Expression]:
    """The operands of a chain of one operator (a loop, not recursion: long OR lists)."""
    out: list[exp.Expression] = []
    pending = [node]
    while pending:
        current = pending.pop()
        if type(current) is kind:
            pending.extend([current.expression, current.this])
        elif isinstance(current, exp.Paren) and type(unparen(current)) is kind:
            pending.append(unparen(current))
        else:
            out.append(current)
    return out


def _describe(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return f"function {node.name.upper()}()"
    if isinstance(node, exp.Func):
        return f"function {node.sql_name()}()"
    return f"'{node.key}'"
