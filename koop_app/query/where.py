"""``where`` (and ``havingClause``): SQL text -> allow-listed sqlglot AST -> DuckDB SQL.

Only the layer's fields, literals and the node types in ``EMITTERS`` pass; each emitter writes
its node from its already-emitted children and says what kind of value it yields. Literals
become ``?`` parameters, so nothing from the request is ever pasted into SQL text.

The cost of a clause is bounded before it reaches DuckDB: its length, the number of nodes of
its tree, their nesting and the values of each IN list (KOOP['MAX_WHERE_*'], 'MAX_IN_LIST').
Long chains of one operator (``a + b + c ...``, ``x OR y OR z ...``, ``s || t || u``) are
emitted flat or as balanced trees: DuckDB plans a left-deep chain of 450 constant terms in
seconds, a balanced one in milliseconds.

Dates are stored as UTC epoch milliseconds, so every date-valued expression (a date field,
``date '2020-01-01'``, ``timestamp '2020-01-01 10:00:00'``, CURRENT_DATE, CAST(.. AS DATE)) is
emitted as milliseconds; EXTRACT turns milliseconds back into a timestamp. LIKE is
case-sensitive, as in ArcGIS; use UPPER()/LOWER() for a case-blind match.

    clause = compile_where("name LIKE 'A%' AND value > 3", schema)
    clause.sql     # '(("name" LIKE ?) AND ("value" > ?))'
    clause.params  # ('A%', 3)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError

from koop_app.conf import koop_settings
from koop_app.data.duck import enum_type, quote_ident
from koop_app.data.schema import DATE, DOUBLE, INTEGER, OID, SMALL_INTEGER, STRING, LayerSchema
from koop_app.data.values import parse_date_ms
from koop_app.errors import InvalidParameterError

_DIALECT = Dialect.get_or_raise(None)
DATE_KIND, NUMBER, TEXT = "date", "number", "text"
_KIND_OF_FIELD = {DATE: DATE_KIND, STRING: TEXT, INTEGER: NUMBER, SMALL_INTEGER: NUMBER,
                  DOUBLE: NUMBER, OID: NUMBER}
EXTRACT_PARTS = {"YEAR", "MONTH", "DAY", "HOUR", "MINUTE", "SECOND"}
MS_PER_DAY = 86_400_000


@dataclass(frozen=True)
class WhereClause:
    sql: str
    params: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Out:
    """An emitted expression and the kind of value it yields (None: unknown or boolean)."""

    sql: str
    kind: str | None = None


class _Rejected(Exception):
    pass


@dataclass
class _Emitter:
    schema: LayerSchema
    aggregates: bool = False
    params: list[Any] = field(default_factory=list)
    # The request's time, read (and then the clause not remembered) only when it names it.
    read_now: dt.datetime | None = None

    @property
    def now(self) -> dt.datetime:
        if self.read_now is None:
            self.read_now = dt.datetime.now(dt.UTC)
        return self.read_now

    def emit(self, node: exp.Expression) -> Out:
        handler = EMITTERS.get(type(node))
        if handler is None and self.aggregates:
            handler = AGGREGATES.get(type(node))
        if handler is None:
            raise _Rejected(f"{_describe(node)} is not supported")
        return handler(self, node)

    def sql(self, node: exp.Expression) -> str:
        return self.emit(node).sql

    def bind(self, value: Any, kind: str | None = None) -> Out:
        self.params.append(value)
        return Out("?", kind)


def _describe(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return f"function {node.name.upper()}()"
    if isinstance(node, (exp.Select, exp.Subquery, exp.Exists)):
        return "a subquery"
    if isinstance(node, exp.Func):
        return f"function {node.sql_name()}()"
    return f"'{node.key}'"


# Compiled clauses by (text, parameter, aggregates, the layer's fields, the limits): clients
# send the same few clauses again and again, and parsing one costs more than running it on a
# small layer. Clauses that read the time of the request are not kept.
_compiled: dict[tuple[Any, ...], WhereClause | None] = {}
MAX_COMPILED = 4096


def compile_where(text: str | None, schema: LayerSchema, *, parameter: str = "where",
                  aggregates: bool = False) -> WhereClause | None:
    """Compile ``text`` against ``schema``; None for an absent or always-true clause."""
    if text is None or not text.strip():
        return None
    key = (text, parameter, aggregates, schema.fields, koop_settings.MAX_WHERE_LENGTH,
           koop_settings.MAX_WHERE_NODES, koop_settings.MAX_WHERE_DEPTH,
           koop_settings.MAX_IN_LIST, koop_settings.MAX_WHERE_COMPUTATIONS)
    try:
        return _compiled[key]
    except KeyError:
        pass
    clause, timeless = _compile(text, schema, parameter, aggregates)
    if timeless and len(text) <= 4096:
        if len(_compiled) >= MAX_COMPILED:
            _compiled.clear()
        _compiled[key] = clause
    return clause


def _compile(text: str, schema: LayerSchema, parameter: str, aggregates: bool
             ) -> tuple[WhereClause | None, bool]:
    """The clause, and whether it is the same whenever it runs (reads no clock)."""
    max_length = int(koop_settings.MAX_WHERE_LENGTH)
    if len(text) > max_length:
        raise InvalidParameterError(
            parameter, f"the clause is too long: {len(text)} characters, at most {max_length}")
    try:
        tokens = _DIALECT.tokenize(text)
        if any(token.comments for token in tokens):
            raise _Rejected("comments are not allowed")
        if any(token.token_type == sqlglot.TokenType.SEMICOLON for token in tokens):
            raise _Rejected("';' is not allowed")
        _check_size(tokens)
        # An expression, never a statement; parsed from the tokens already read (not twice).
        (tree,) = _DIALECT.parser().parse_into(exp.Condition, tokens, text)
        if tree is None:
            raise _Rejected("the clause is empty")
        _check_tree(tree)
        if _always_true(tree):
            return None, True
        emitter = _Emitter(schema, aggregates=aggregates)
        sql = emitter.sql(tree)
    except (ParseError, TokenError):
        raise InvalidParameterError(parameter, f"cannot parse {text!r}") from None
    except _Rejected as exc:
        raise InvalidParameterError(parameter, str(exc)) from None
    except RecursionError:
        raise InvalidParameterError(parameter, "the clause is too complex") from None
    return WhereClause(sql, tuple(emitter.params)), emitter.read_now is None


def _check_size(tokens: list[Any]) -> None:
    """Bound the work before parsing: the parser and emitter recurse on nesting."""
    max_nodes = int(koop_settings.MAX_WHERE_NODES)
    max_depth = int(koop_settings.MAX_WHERE_DEPTH)
    # Commas and parentheses are tokens but not nodes: a list of n values is 2n tokens.
    if len(tokens) > 2 * max_nodes + 16:
        raise _Rejected(f"the clause is too long: more than {max_nodes} terms")
    depth = 0
    for token in tokens:
        if token.token_type == sqlglot.TokenType.L_PAREN:
            depth += 1
            if depth > max_depth:
                raise _Rejected(f"the clause is nested too deeply: at most {max_depth} levels")
        elif token.token_type == sqlglot.TokenType.R_PAREN:
            depth -= 1


# Operators whose left-deep chains are emitted flat (or balanced): one level of nesting each.
_CHAIN_FAMILY: dict[type[exp.Expression], str] = {
    exp.And: "and", exp.Or: "or", exp.Add: "sum", exp.Sub: "sum", exp.Mul: "product",
    exp.DPipe: "concat",
}


# Evaluated on every row: their number, times the rows, is the clause's cost in DuckDB.
# (AND and OR are sqlglot Funcs too: they are not counted.)
_COMPUTATIONS = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg, exp.DPipe, exp.Func)


def _check_tree(tree: exp.Expression) -> None:
    """The parsed tree within KOOP['MAX_WHERE_NODES'], 'MAX_WHERE_DEPTH',
    'MAX_WHERE_COMPUTATIONS' and 'MAX_IN_LIST'.

    Depth counts nesting as a reader sees it: ``a OR b OR c`` is one level, not three.
    """
    max_nodes = int(koop_settings.MAX_WHERE_NODES)
    max_depth = int(koop_settings.MAX_WHERE_DEPTH)
    max_in = int(koop_settings.MAX_IN_LIST)
    max_computations = int(koop_settings.MAX_WHERE_COMPUTATIONS)
    nodes = 0
    ordered: list[exp.Expression] = []  # parents before their children
    pending: list[tuple[exp.Expression, int]] = [(tree, 1)]
    while pending:
        node, depth = pending.pop()
        ordered.append(node)
        nodes += not isinstance(node, exp.Identifier)  # a column's name is part of it
        if nodes > max_nodes:
            raise _Rejected(f"the clause is too long: more than {max_nodes} terms")
        if depth > max_depth:
            raise _Rejected(f"the clause is nested too deeply: at most {max_depth} levels")
        if isinstance(node, exp.In) and len(node.expressions) > max_in:
            raise _Rejected(f"IN lists {len(node.expressions)} values, at most {max_in}")
        family = _CHAIN_FAMILY.get(type(node))
        for child in node.iter_expressions():
            chained = (family is not None and child is node.this
                       and _CHAIN_FAMILY.get(type(child)) == family)
            flat = chained or isinstance(child, exp.Identifier)
            pending.append((child, depth if flat else depth + 1))
    # Bound request values are not constants to DuckDB: ``? + ? + ...`` runs on every row too.
    computations = sum(1 for node in ordered if _computes(node))
    if computations > max_computations:
        raise _Rejected(f"the clause computes too much: {computations} operators and function "
                        f"calls, at most {max_computations}")


def _computes(node: exp.Expression) -> bool:
    """An operator or function evaluated per row (not a literal bound as one value)."""
    if not isinstance(node, _COMPUTATIONS) or isinstance(node, exp.Connector):
        return False
    if isinstance(node, (exp.CurrentDate, exp.CurrentTimestamp)):
        return False  # bound as one value
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal) and node.this.is_string:
        return False  # date '2024-01-01', timestamp '...': bound as one value
    return not (isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal))


def _always_true(tree: exp.Expression) -> bool:
    """``1=1`` (and ``TRUE``), which clients send to mean "everything"."""
    if isinstance(tree, exp.Boolean):
        return tree.this is True
    return (
        isinstance(tree, exp.EQ)
        and isinstance(tree.this, exp.Literal)
        and isinstance(tree.expression, exp.Literal)
        and tree.this.this == tree.expression.this
        and tree.this.is_string == tree.expression.is_string
    )


# --- leaves -------------------------------------------------------------------------------

def _column(e: _Emitter, node: exp.Column) -> Out:
    if node.table:
        raise _Rejected(f"qualified name {node.sql()!r} is not allowed")
    found = e.schema.field(node.name)
    if found is None:
        raise _Rejected(f"{node.name!r} is not a field of this layer")
    return Out(quote_ident(found.name), _KIND_OF_FIELD.get(found.type))


def _literal(e: _Emitter, node: exp.Literal) -> Out:
    if node.is_string:
        return e.bind(node.this, TEXT)
    text = node.this
    try:
        value: Any = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            raise _Rejected(f"{text!r} is not a number") from None
    return e.bind(value, NUMBER)


def _date_ms(text: str) -> int:
    value = parse_date_ms(text.strip())
    if value is None:
        raise _Rejected(f"{text!r} is not a date (use 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MI:SS')")
    return value


def _cast(e: _Emitter, node: exp.Cast) -> Out:
    target = node.to.this
    inner = node.this
    if target in (exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP,
                  exp.DataType.Type.DATETIME, exp.DataType.Type.TIMESTAMPTZ):
        if isinstance(inner, exp.Literal) and inner.is_string:  # date '...' / timestamp '...'
            ms = _date_ms(inner.this)
            if target == exp.DataType.Type.DATE:
                ms -= ms % MS_PER_DAY
            return e.bind(ms, DATE_KIND)
        value = e.emit(inner)
        if value.kind == DATE_KIND:
            ms = value.sql
        elif value.kind == TEXT:
            ms = f"epoch_ms(CAST({value.sql} AS TIMESTAMP))"
        else:
            raise _Rejected("CAST to a date takes a date or text")
        if target == exp.DataType.Type.DATE:
            # Each emitted expression appears once: its "?" placeholders bind in order.
            return Out(f"epoch_ms(date_trunc('day', epoch_ms({ms})))", DATE_KIND)
        return Out(ms, DATE_KIND)
    value = e.emit(inner)
    if target in exp.DataType.TEXT_TYPES:
        if value.kind == DATE_KIND:
            return Out(f"strftime(epoch_ms({value.sql}), '%Y-%m-%d %H:%M:%S')", TEXT)
        return Out(f"CAST({value.sql} AS VARCHAR)", TEXT)
    if target in exp.DataType.INTEGER_TYPES:
        return Out(f"CAST({value.sql} AS BIGINT)", NUMBER)
    if target in exp.DataType.REAL_TYPES:
        return Out(f"CAST({value.sql} AS DOUBLE)", NUMBER)
    raise _Rejected(f"CAST to {node.to.sql()} is not supported")


# --- operators ------------------------------------------------------------------------------

def _comparison(operator: str) -> Callable[[_Emitter, exp.Expression], Out]:
    def emit(e: _Emitter, node: exp.Expression) -> Out:
        left, right = _date_pair(e, node.this, node.expression)
        return Out(f"({left.sql} {operator} {right.sql})")

    return emit


def _date_pair(e: _Emitter, a: exp.Expression, b: exp.Expression) -> tuple[Out, Out]:
    """Emit two operands; a text literal beside a date becomes epoch milliseconds."""
    left, right = _operand(e, a, b), _operand(e, b, a)
    return left, right


def _operand(e: _Emitter, node: exp.Expression, other: exp.Expression) -> Out:
    if isinstance(node, exp.Literal) and node.is_string:
        if _is_date(e, other):
            return e.bind(_date_ms(node.this), DATE_KIND)
        labels = _enum_labels(e, other)
        if labels is not None and node.this in labels:
            # The value as the column's ENUM: DuckDB then compares small integers, where a
            # text value would turn every row's label into text first (10M rows: 42 -> 26 ms).
            # Labels are sorted, so <, > and BETWEEN keep their meaning on text.
            return Out(f"CAST({e.bind(node.this).sql} AS {enum_type(labels)})", TEXT)
    return e.emit(node)


def _enum_labels(e: _Emitter, node: exp.Expression) -> tuple[str, ...] | None:
    """The labels of a few-valued text field that hot tables store as an ENUM."""
    if isinstance(node, exp.Column) and not node.table:
        found = e.schema.field(node.name)
        if found is not None and found.type == STRING and found.enum_values:
            return found.enum_values
    return None


def _enum_in(e: _Emitter, column: exp.Expression, values: list[exp.Expression]) -> Out | None:
    """``column IN ('a', 'b', ...)`` on an ENUM field as one bit test of the label's code.

    DuckDB runs an IN list on an ENUM as ORed comparisons after the scan; a bit mask of the
    wanted codes is one integer operation per row (10M rows, two values: 90 -> 45 ms). Labels
    not in the field match no row, as in the list. A NULL label stays NULL, as in IN.
    """
    labels = _enum_labels(e, column)
    if labels is None or len(labels) > 64 or not all(
            isinstance(v, exp.Literal) and v.is_string for v in values):
        return None
    mask = 0
    for value in values:
        if value.this in labels:
            mask |= 1 << labels.index(value.this)
    target = e.emit(column)
    return Out(f"(((1::UBIGINT << enum_code({target.sql})) & "
               f"CAST({e.bind(mask).sql} AS UBIGINT)) <> 0)")


def _is_date(e: _Emitter, node: exp.Expression) -> bool:
    if isinstance(node, exp.Column):
        found = e.schema.field(node.name)
        return found is not None and found.type == DATE
    if isinstance(node, exp.Cast):
        return node.to.this in (exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP)
    return isinstance(node, (exp.CurrentDate, exp.CurrentTimestamp))


def _arithmetic(operator: str) -> Callable[[_Emitter, exp.Expression], Out]:
    def emit(e: _Emitter, node: exp.Expression) -> Out:
        left, right = e.emit(node.this), e.emit(node.expression)
        kind = DATE_KIND if DATE_KIND in (left.kind, right.kind) and operator in "+-" else NUMBER
        return Out(f"({left.sql} {operator} {right.sql})", kind)

    return emit


def _left_chain(node: exp.Expression, types: tuple[type[exp.Expression], ...]
                ) -> list[tuple[exp.Expression | None, exp.Expression]]:
    """A left-deep chain ``((a op b) op c)`` as [(None, a), (op node, b), (op node, c)]."""
    links: list[tuple[exp.Expression | None, exp.Expression]] = []
    current = node
    while type(current) in types:
        links.append((current, current.expression))
        current = current.this
    links.append((None, current))
    links.reverse()
    return links


def _balanced(items: list[tuple[str, bool]], operator: str, inverse: str) -> tuple[str, bool]:
    """Pairwise combine (sql, negated) terms in their order, so ``?`` placeholders stay in
    emission order; depth log2(n) instead of n."""
    while len(items) > 1:
        paired: list[tuple[str, bool]] = []
        for i in range(0, len(items) - 1, 2):
            (a, a_neg), (b, b_neg) = items[i], items[i + 1]
            if a_neg == b_neg:
                paired.append((f"({a} {operator} {b})", a_neg))
            elif b_neg:
                paired.append((f"({a} {inverse} {b})", False))
            else:  # -a + b, without moving b's placeholders before a's
                paired.append((f"((-{a}) {operator} {b})", False))
        if len(items) % 2:
            paired.append(items[-1])
        items = paired
    sql, negated = items[0]
    return (f"(-{sql})" if negated else sql), False


def _sum(e: _Emitter, node: exp.Expression) -> Out:
    links = _left_chain(node, (exp.Add, exp.Sub))
    if len(links) == 2:
        return _arithmetic("+" if isinstance(node, exp.Add) else "-")(e, node)
    terms = [(op, e.emit(operand)) for op, operand in links]
    kind = DATE_KIND if any(out.kind == DATE_KIND for _, out in terms) else NUMBER
    sql, _ = _balanced([(out.sql, isinstance(op, exp.Sub)) for op, out in terms], "+", "-")
    return Out(sql, kind)


def _product(e: _Emitter, node: exp.Expression) -> Out:
    links = _left_chain(node, (exp.Mul,))
    if len(links) == 2:
        return _arithmetic("*")(e, node)
    sql, _ = _balanced([(e.sql(operand), False) for _, operand in links], "*", "/")
    return Out(sql, NUMBER)


def _logical(operator: str) -> Callable[[_Emitter, exp.Expression], Out]:
    def emit(e: _Emitter, node: exp.Expression) -> Out:
        # Long OR/AND chains are left-deep trees: walk them in a loop, not by recursion.
        operands: list[exp.Expression] = []
        pending = [node]
        while pending:
            current = pending.pop()
            if type(current) is type(node):
                pending.extend([current.expression, current.this])
            else:
                operands.append(current)
        if operator == "OR":
            return Out("(" + " OR ".join(_or_terms(e, operands)) + ")")
        return Out("(" + f" {operator} ".join(e.sql(o) for o in operands) + ")")

    return emit


def _equality_key(node: exp.Expression) -> str | None:
    """The column of ``column = literal`` (either way round), lower-cased; else None."""
    if not isinstance(node, exp.EQ):
        return None
    sides = (node.this, node.expression)
    for column, value in (sides, sides[::-1]):
        if isinstance(column, exp.Column) and not column.table and isinstance(value, exp.Literal):
            return column.name.lower()
    return None


def _or_terms(e: _Emitter, operands: list[exp.Expression]) -> list[str]:
    """OR's terms, with ``f = 1 OR f = 2 OR ...`` on one field as one ``f IN (1, 2, ...)``.

    Clients spell a selection as hundreds of ORed equalities; DuckDB evaluates each on every
    row, but an IN list with one lookup. A group is emitted where its first member stands, so
    the placeholders stay in emission order.
    """
    groups: dict[str, list[exp.EQ]] = {}
    for operand in operands:
        key = _equality_key(operand)
        if key is not None:
            groups.setdefault(key, []).append(operand)  # type: ignore[arg-type]
    terms: list[str] = []
    for operand in operands:
        key = _equality_key(operand)
        group = groups.get(key) if key is not None else None
        if group is None or len(group) < 3:
            terms.append(e.sql(operand))
        elif group[0] is operand:
            column = next(side for side in (operand.this, operand.expression)
                          if isinstance(side, exp.Column))
            literals = [member.expression if isinstance(member.this, exp.Column)
                        else member.this for member in group]
            masked = _enum_in(e, column, literals)
            if masked is not None:
                terms.append(masked.sql)
                continue
            target = e.emit(column)
            values = [_operand(e, literal, column).sql for literal in literals]
            terms.append(f"({target.sql} IN ({', '.join(values)}))")
    return terms


def _in(e: _Emitter, node: exp.In) -> Out:
    if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
        raise _Rejected("IN takes a list of values only")
    if not node.expressions:
        raise _Rejected("IN needs at least one value")
    masked = _enum_in(e, node.this, list(node.expressions))
    if masked is not None:
        return masked
    target = e.emit(node.this)
    items = ", ".join(_operand(e, item, node.this).sql for item in node.expressions)
    return Out(f"({target.sql} IN ({items}))")


def _between(e: _Emitter, node: exp.Between) -> Out:
    target = e.emit(node.this)
    low = _operand(e, node.args["low"], node.this)
    high = _operand(e, node.args["high"], node.this)
    return Out(f"({target.sql} BETWEEN {low.sql} AND {high.sql})")


def _is(e: _Emitter, node: exp.Is) -> Out:
    if not isinstance(node.expression, exp.Null):
        raise _Rejected("IS takes NULL only")
    return Out(f"({e.sql(node.this)} IS NULL)")


def _like(e: _Emitter, node: exp.Like, escape: str | None = None) -> Out:
    text = e.emit(node.this)
    if text.kind not in (TEXT, None):
        raise _Rejected("LIKE applies to text")
    pattern = e.sql(node.expression)
    if escape is None:
        return Out(f"({text.sql} LIKE {pattern})")
    return Out(f"({text.sql} LIKE {pattern} ESCAPE {e.bind(escape).sql})")


def _escape(e: _Emitter, node: exp.Escape) -> Out:
    like = node.this
    if not isinstance(like, exp.Like):
        raise _Rejected("ESCAPE goes with LIKE")
    escape = node.expression
    if not (isinstance(escape, exp.Literal) and escape.is_string and len(escape.this) == 1):
        raise _Rejected("ESCAPE takes one character")
    return _like(e, like, escape.this)


# --- functions ------------------------------------------------------------------------------

def _function(template: str, kind: str | None, *args: str) -> Callable[[_Emitter, Any], Out]:
    """``template`` with {0}, {1}... filled by the node's named arguments, in order."""

    def emit(e: _Emitter, node: exp.Expression) -> Out:
        values = []
        for name in args:
            child = node.args.get(name)
            if child is None:
                values.append(None)
            else:
                values.append(e.sql(child))
        return Out(template.format(*values), kind)

    return emit


def _round(e: _Emitter, node: exp.Round) -> Out:
    value = e.sql(node.this)
    digits = node.args.get("decimals")
    return Out(f"round({value}, CAST({e.sql(digits) if digits else 0} AS INTEGER))", NUMBER)


def _log(e: _Emitter, node: exp.Log) -> Out:
    if node.expression is None:  # LOG(x): natural logarithm, as in ArcGIS standardized SQL
        return Out(f"ln({e.sql(node.this)})", NUMBER)
    base = node.this
    if isinstance(base, exp.Literal) and base.this == "10":
        return Out(f"log10({e.sql(node.expression)})", NUMBER)
    raise _Rejected("LOG takes one argument (use LOG10 for base 10)")


def _anonymous(e: _Emitter, node: exp.Anonymous) -> Out:
    name = node.name.upper()
    args = [e.sql(a) for a in node.expressions]
    if name == "TRUNCATE" and len(args) in (1, 2):
        digits = args[1] if len(args) == 2 else "0"
        return Out(f"trunc({args[0]}, CAST({digits} AS INTEGER))", NUMBER)
    if name == "LOG10" and len(args) == 1:
        return Out(f"log10({args[0]})", NUMBER)
    raise _Rejected(f"function {name}() is not supported")


def _extract(e: _Emitter, node: exp.Extract) -> Out:
    part = node.this.name.upper()
    if part not in EXTRACT_PARTS:
        raise _Rejected(f"EXTRACT({part}) is not supported")
    value = e.emit(node.expression)
    if value.kind != DATE_KIND:
        raise _Rejected("EXTRACT applies to dates")
    return Out(f"CAST(extract({part.lower()} FROM epoch_ms({value.sql})) AS BIGINT)", NUMBER)


def _trim(e: _Emitter, node: exp.Trim) -> Out:
    position = str(node.args.get("position") or "BOTH").upper()
    function = {"BOTH": "trim", "LEADING": "ltrim", "TRAILING": "rtrim"}.get(position)
    if function is None:
        raise _Rejected(f"TRIM {position} is not supported")
    characters = node.args.get("expression")
    if characters is None:
        return Out(f"{function}({e.sql(node.this)})", TEXT)
    return Out(f"{function}({e.sql(node.this)}, {e.sql(characters)})", TEXT)


def _substring(e: _Emitter, node: exp.Substring) -> Out:
    start = node.args.get("start")
    length = node.args.get("length")
    text = e.sql(node.this)
    begin = e.sql(start) if start is not None else "1"
    if length is None:
        return Out(f"substring({text}, {begin})", TEXT)
    return Out(f"substring({text}, {begin}, {e.sql(length)})", TEXT)


def _concat(e: _Emitter, node: exp.Expression) -> Out:
    if isinstance(node, exp.Concat):
        parts = node.expressions
    else:  # a || b || c: one concat() call, not one per operator
        parts = [operand for _, operand in _left_chain(node, (exp.DPipe,))]
    return Out("concat(" + ", ".join(e.sql(p) for p in parts) + ")", TEXT)


def _coalesce(e: _Emitter, node: exp.Coalesce) -> Out:
    values = [e.emit(node.this)] + [e.emit(x) for x in node.expressions]
    kind = values[0].kind
    return Out("coalesce(" + ", ".join(v.sql for v in values) + ")", kind)


def _current_date(e: _Emitter, node: exp.Expression) -> Out:
    midnight = e.now.replace(hour=0, minute=0, second=0, microsecond=0)
    return e.bind(int(midnight.timestamp() * 1000), DATE_KIND)


def _current_timestamp(e: _Emitter, node: exp.Expression) -> Out:
    return e.bind(int(e.now.timestamp() * 1000), DATE_KIND)


def _aggregate(function: str) -> Callable[[_Emitter, Any], Out]:
    def emit(e: _Emitter, node: exp.Expression) -> Out:
        argument = node.this
        if isinstance(argument, exp.Star):
            if function != "count":
                raise _Rejected(f"{function.upper()}(*) is not supported")
            return Out("count(*)", NUMBER)
        return Out(f"{function}({e.sql(argument)})", NUMBER)

    return emit


EMITTERS: dict[type[exp.Expression], Callable[[_Emitter, Any], Out]] = {
    exp.Column: _column,
    exp.Literal: _literal,
    exp.Null: lambda e, n: Out("NULL"),
    exp.Boolean: lambda e, n: Out("TRUE" if n.this else "FALSE"),
    exp.Paren: lambda e, n: (lambda o: Out(f"({o.sql})", o.kind))(e.emit(n.this)),
    exp.Not: lambda e, n: Out(f"(NOT {e.sql(n.this)})"),
    exp.Neg: lambda e, n: Out(f"(-{e.sql(n.this)})", NUMBER),
    exp.And: _logical("AND"),
    exp.Or: _logical("OR"),
    exp.EQ: _comparison("="),
    exp.NEQ: _comparison("<>"),
    exp.GT: _comparison(">"),
    exp.GTE: _comparison(">="),
    exp.LT: _comparison("<"),
    exp.LTE: _comparison("<="),
    exp.Add: _sum,
    exp.Sub: _sum,
    exp.Mul: _product,
    exp.Div: _arithmetic("/"),
    exp.Mod: _function("({0} % {1})", NUMBER, "this", "expression"),
    exp.Like: _like,
    exp.Escape: _escape,
    exp.In: _in,
    exp.Between: _between,
    exp.Is: _is,
    exp.Cast: _cast,
    exp.Upper: _function("upper({0})", TEXT, "this"),
    exp.Lower: _function("lower({0})", TEXT, "this"),
    exp.Abs: _function("abs({0})", NUMBER, "this"),
    exp.Ceil: _function("ceil({0})", NUMBER, "this"),
    exp.Floor: _function("floor({0})", NUMBER, "this"),
    exp.Round: _round,
    exp.Pow: _function("pow({0}, {1})", NUMBER, "this", "expression"),
    exp.Log: _log,
    exp.Length: _function("length({0})", NUMBER, "this"),
    exp.Concat: _concat,
    exp.DPipe: _concat,
    exp.StrPosition: _function("strpos({0}, {1})", NUMBER, "this", "substr"),
    exp.Substring: _substring,
    exp.Trim: _trim,
    exp.Coalesce: _coalesce,
    exp.Nullif: _function("nullif({0}, {1})", None, "this", "expression"),
    exp.Extract: _extract,
    exp.CurrentDate: _current_date,
    exp.CurrentTimestamp: _current_timestamp,
    exp.Anonymous: _anonymous,
}

# havingClause only
AGGREGATES: dict[type[exp.Expression], Callable[[_Emitter, Any], Out]] = {
    exp.Count: _aggregate("count"),
    exp.Sum: _aggregate("sum"),
    exp.Min: _aggregate("min"),
    exp.Max: _aggregate("max"),
    exp.Avg: _aggregate("avg"),
    exp.Stddev: _aggregate("stddev_samp"),
    exp.StddevSamp: _aggregate("stddev_samp"),
    exp.Variance: _aggregate("var_samp"),
}
