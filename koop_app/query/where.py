"""``where`` (and ``havingClause``): SQL text -> allow-listed sqlglot AST -> DuckDB SQL.

Only the layer's fields, literals and the node types in ``EMITTERS`` pass; each emitter writes
its node from its already-emitted children and says what kind of value it yields. Literals
become ``?`` parameters, so nothing from the request is ever pasted into SQL text.

The kinds are checked as ArcGIS Server checks a standardized query, so that DuckDB never sees a
clause it would refuse while running it: the clause, and each operand of AND, OR and NOT, must
be a condition (a comparison, LIKE, IN, BETWEEN, IS NULL; ``where=5`` or ``where=name`` is a
400); both sides of a comparison are of one kind (text, number or date; a quoted number beside a
number and a quoted date beside a date are read as such); functions and operators take their
kinds. Casts of text use TRY_CAST (NULL, not an error, for text that is not a number or date).

The cost of a clause is bounded before it reaches DuckDB: its length, the number of nodes of
its tree, their nesting and the values of each IN list (KOOP['MAX_WHERE_*'], 'MAX_IN_LIST').
Long chains of one operator (``a + b + c ...``, ``x OR y OR z ...``, ``s || t || u``) are
emitted flat or as balanced trees: DuckDB plans a left-deep chain of 450 constant terms in
seconds, a balanced one in milliseconds.

Dates are stored as UTC epoch milliseconds, so every date-valued expression (a date field,
``date '2020-01-01'``, ``timestamp '2020-01-01 10:00:00'``, CURRENT_DATE, CAST(.. AS DATE)) is
emitted as milliseconds; EXTRACT turns milliseconds back into a timestamp.

Text compares without case, as on ArcGIS Online's hosted layers (``strings.py``): =, <>, <, <=,
>, >=, BETWEEN, IN and LIKE; ``case_sensitive=True`` (the dataset's switch) compares exactly.

    clause = compile_where("name LIKE 'A%' AND value > 3", schema)
    clause.sql     # '(("name" ILIKE ?) AND ("value" > ?))'
    clause.params  # ('A%', 3)
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError

from koop_app.conf import koop_settings
from koop_app.data.duck import quote_ident
from koop_app.data.schema import DATE, DOUBLE, INTEGER, OID, SMALL_INTEGER, STRING, LayerSchema
from koop_app.data.values import parse_date_ms
from koop_app.errors import InvalidParameterError
from koop_app.query import strings

_DIALECT = Dialect.get_or_raise(None)
DATE_KIND, NUMBER, TEXT = "date", "number", "text"
BOOL = "condition"  # a truth value: what a clause and the operands of AND, OR, NOT must be
KIND_NAMES = {DATE_KIND: "a date", NUMBER: "a number", TEXT: "text", BOOL: "a condition"}
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
    """An emitted expression and the kind of value it yields (None: NULL or unknown)."""

    sql: str
    kind: str | None = None
    # The text of a quoted literal bound as this one ``?``: the fast paths look at it.
    literal: str | None = None


class _Rejected(Exception):
    pass


@dataclass
class _Emitter:
    schema: LayerSchema
    aggregates: bool = False
    case_sensitive: bool = False
    # havingClause: the grouped fields, which it may name outside an aggregate function.
    groups: frozenset[str] = frozenset()
    aggregating: bool = False  # inside an aggregate function's argument
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

    def value(self, node: exp.Expression, what: str = "", *kinds: str) -> Out:
        """A value (not a condition); with ``kinds``, one of them (or NULL) for ``what``."""
        out = self.emit(node)
        if out.kind == BOOL:
            raise _Rejected(f"{_snippet(node)} is a condition, not a value")
        if kinds and out.kind is not None and out.kind not in kinds:
            takes = " or ".join(KIND_NAMES[kind] for kind in kinds)
            raise _Rejected(f"{what} takes {takes}, not {KIND_NAMES[out.kind]}: "
                            f"{_snippet(node)}")
        return out

    def sql(self, node: exp.Expression, what: str = "", *kinds: str) -> str:
        return self.value(node, what, *kinds).sql

    def condition(self, node: exp.Expression) -> str:
        out = self.emit(node)
        if out.kind != BOOL:
            raise _Rejected(f"{_snippet(node)} is not a condition: compare it (=, <>, <, >, "
                            "LIKE, IN, BETWEEN, IS NULL)")
        return out.sql

    def apart(self, node: exp.Expression, what: str = "", *kinds: str
              ) -> tuple[Out, list[Any]]:
        """A value and its parameters, kept aside for an emitter that places them itself."""
        saved, self.params = self.params, []
        try:
            out = self.value(node, what, *kinds)
        finally:
            params, self.params = self.params, saved
        return out, params

    def bind(self, value: Any, kind: str | None = None) -> Out:
        self.params.append(value)
        return Out("?", kind)

    def add(self, sql: str, params: list[Any], kind: str | None = BOOL) -> Out:
        self.params.extend(params)
        return Out(sql, kind)


def _describe(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return f"function {node.name.upper()}()"
    if isinstance(node, (exp.Select, exp.Subquery, exp.Exists)):
        return "a subquery"
    if isinstance(node, exp.Func):
        return f"function {node.sql_name()}()"
    return f"'{node.key}'"


def _snippet(node: exp.Expression) -> str:
    """The request's expression, short, for a message to the client."""
    text = node.sql()
    return text if len(text) <= 60 else text[:57] + "..."


# Compiled clauses by (text, parameter, aggregates, groups, case, the layer's fields, limits):
# clients send the same few clauses again and again, and parsing one costs more than running it
# on a small layer. Clauses that read the time of the request are not kept.
_compiled: dict[tuple[Any, ...], WhereClause | None] = {}
MAX_COMPILED = 4096


def compile_where(text: str | None, schema: LayerSchema, *, parameter: str = "where",
                  aggregates: bool = False, groups: tuple[str, ...] = (),
                  case_sensitive: bool = False) -> WhereClause | None:
    """Compile ``text`` against ``schema``; None for an absent or always-true clause.

    ``aggregates``: a havingClause, with aggregate functions, naming fields other than the
    ``groups`` only inside them. Text compares without case unless ``case_sensitive`` (the
    dataset's switch).
    """
    if text is None or not text.strip():
        return None
    key = (text, parameter, aggregates, groups, case_sensitive, schema.fields,
           koop_settings.MAX_WHERE_LENGTH, koop_settings.MAX_WHERE_NODES,
           koop_settings.MAX_WHERE_DEPTH,
           koop_settings.MAX_IN_LIST, koop_settings.MAX_WHERE_COMPUTATIONS)
    try:
        return _compiled[key]
    except KeyError:
        pass
    clause, timeless = _compile(text, schema, parameter, aggregates, groups, case_sensitive)
    if timeless and len(text) <= 4096:
        if len(_compiled) >= MAX_COMPILED:
            _compiled.clear()
        _compiled[key] = clause
    return clause


def _compile(text: str, schema: LayerSchema, parameter: str, aggregates: bool,
             groups: tuple[str, ...], case_sensitive: bool
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
        tree = _parse(tokens, text)
        _check_tree(tree)
        if _always_true(tree):
            return None, True
        emitter = _Emitter(schema, aggregates=aggregates, case_sensitive=case_sensitive,
                           groups=frozenset(name.lower() for name in groups))
        sql = emitter.condition(tree)
    except (ParseError, TokenError):
        raise InvalidParameterError(parameter, f"cannot parse {text!r}") from None
    except _Rejected as exc:
        raise InvalidParameterError(parameter, str(exc)) from None
    except RecursionError:
        raise InvalidParameterError(parameter, "the clause is too complex") from None
    return WhereClause(sql, tuple(emitter.params)), emitter.read_now is None


def _parse(tokens: list[Any], text: str) -> exp.Expression:
    """An expression, never a statement; parsed from the tokens already read (not twice)."""
    (tree,) = _DIALECT.parser().parse_into(exp.Condition, tokens, text)
    if tree is None:
        raise _Rejected("the clause is empty")
    return tree


def checked_tree(text: str | None, schema: LayerSchema, *, parameter: str = "where",
                 case_sensitive: bool = False) -> exp.Expression | None:
    """The sqlglot tree of a clause ``compile_where`` accepts, for a pass-through provider to
    re-emit in its source's own language (SQL of another database, a search query).

    The same checks run first, so a bad clause is the same 400 here; None for an absent or
    always-true clause. Every node of the tree is of a type in ``EMITTERS`` (AGGREGATES are
    not allowed in a where), its columns are fields of ``schema`` (their names as the client
    wrote them: look them up with ``schema.field``), and the kinds of its operands agree.
    """
    if compile_where(text, schema, parameter=parameter, case_sensitive=case_sensitive) is None:
        return None
    assert text is not None
    return tree_of_checked(text)


def tree_of_checked(text: str) -> exp.Expression:
    """The sqlglot tree of a clause ``compile_where`` already accepted (a parsed Query's
    ``having``, say): parsed again, not checked again."""
    return _parse(_DIALECT.tokenize(text), text)


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
    if e.aggregates and not e.aggregating and found.name.lower() not in e.groups:
        raise _Rejected(f"{found.name!r} is neither grouped nor inside an aggregate function "
                        "(COUNT, SUM, MIN, MAX, AVG, STDDEV, VAR)")
    return Out(quote_ident(found.name), _KIND_OF_FIELD.get(found.type))


def _literal(e: _Emitter, node: exp.Literal) -> Out:
    if node.is_string:
        e.params.append(node.this)
        return Out("?", TEXT, node.this)
    return e.bind(_number(node.this), NUMBER)


def literal_number(text: str) -> int | float | None:
    """The number a literal's text spells (None: not a number); past 64 bits an integer is a
    double, as in DuckDB. Re-emitters of a ``checked_tree`` read its literals with it."""
    text = text.strip()
    try:
        value: int | float = int(text)
        if -(2**63) <= value < 2**63:
            return value
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    if math.isnan(value) or (math.isinf(value) and "e" not in text.lower()):
        return None  # 'nan', 'inf': not SQL numbers
    return value


def _number(text: str) -> int | float:
    value = literal_number(text)
    if value is None:
        raise _Rejected(f"{text.strip()!r} is not a number")
    return value


def _date_ms(text: str) -> int:
    value = parse_date_ms(text.strip())
    if value is None:
        raise _Rejected(f"{text!r} is not a date (use 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MI:SS')")
    return value


def unparen(node: exp.Expression) -> exp.Expression:
    """``node`` without the parentheses around it."""
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def text_literal(node: exp.Expression) -> str | None:
    """The text of a quoted literal (in parentheses or not), else None."""
    node = unparen(node)
    return node.this if isinstance(node, exp.Literal) and node.is_string else None


_unparen, _text_literal = unparen, text_literal


def _beside(e: _Emitter, node: exp.Expression, kind: str | None) -> tuple[Out, list[Any]]:
    """A value emitted beside one of ``kind``: a quoted literal is read as a date beside a
    date and as a number beside a number (``value = '5'``, as SQL Server converts it)."""
    text = _text_literal(node)
    if text is None:
        return e.apart(node)
    if kind == DATE_KIND:
        return Out("?", DATE_KIND), [_date_ms(text)]
    if kind == NUMBER:
        return Out("?", NUMBER), [_number(text)]
    return Out("?", TEXT, text), [text]


def _pair(e: _Emitter, a: exp.Expression, b: exp.Expression
          ) -> tuple[Out, list[Any], Out, list[Any]]:
    """Two operands and their parameters; a quoted literal takes the other side's kind."""
    if _text_literal(a) is not None and _text_literal(b) is None:
        right, right_params = e.apart(b)
        left, left_params = _beside(e, a, right.kind)
    else:
        left, left_params = e.apart(a)
        right, right_params = _beside(e, b, left.kind)
    return left, left_params, right, right_params


def _comparable(node: exp.Expression, *outs: Out) -> None:
    """Values of one kind (or NULL): DuckDB would refuse text beside a number at run time."""
    kinds = list(dict.fromkeys(out.kind for out in outs if out.kind is not None))
    if len(kinds) > 1:
        raise _Rejected(f"cannot compare {KIND_NAMES[kinds[0]]} with {KIND_NAMES[kinds[1]]}: "
                        f"{_snippet(node)}")


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
        value = e.value(inner, "CAST to a date", DATE_KIND, TEXT)
        if value.kind == TEXT:
            ms = f"epoch_ms(TRY_CAST({value.sql} AS TIMESTAMP))"
        else:
            ms = value.sql
        if target == exp.DataType.Type.DATE:
            # Each emitted expression appears once: its "?" placeholders bind in order.
            return Out(f"epoch_ms(date_trunc('day', epoch_ms({ms})))", DATE_KIND)
        return Out(ms, DATE_KIND)
    value = e.value(inner)
    if target in exp.DataType.TEXT_TYPES:
        if value.kind == DATE_KIND:
            return Out(f"strftime(epoch_ms({value.sql}), '%Y-%m-%d %H:%M:%S')", TEXT)
        return Out(f"CAST({value.sql} AS VARCHAR)", TEXT)
    # TRY_CAST: text that is no number, or a number past the type, is NULL, not an error.
    if target in exp.DataType.INTEGER_TYPES:
        return Out(f"TRY_CAST({value.sql} AS BIGINT)", NUMBER)
    if target in exp.DataType.REAL_TYPES:
        return Out(f"TRY_CAST({value.sql} AS DOUBLE)", NUMBER)
    raise _Rejected(f"CAST to {node.to.sql()} is not supported")


# --- comparisons of text --------------------------------------------------------------------

def _enum_field(e: _Emitter, node: exp.Expression) -> tuple[str, tuple[str, ...]] | None:
    """The column and labels of a few-valued text field that hot tables store as an ENUM."""
    node = _unparen(node)
    if isinstance(node, exp.Column) and not node.table:
        found = e.schema.field(node.name)
        if found is not None and found.type == STRING and found.enum_values:
            return quote_ident(found.name), found.enum_values
    return None


def _on_labels(e: _Emitter, field: tuple[str, tuple[str, ...]], predicate: str,
               params: list[Any]) -> Out:
    """A condition between an ENUM field and literals (``predicate`` on column ``v``),
    decided on the labels now and matched by label code on each row."""
    column, labels = field
    return e.add(*strings.membership(column, labels, strings.label_codes(labels, predicate,
                                                                         params)))


def _folded(e: _Emitter, sql: str) -> str:
    return sql if e.case_sensitive else f"lower({sql})"


def _text_equal(other: Out, other_params: list[Any], text: str, negated: bool
                ) -> tuple[str, list[Any]]:
    """``other = 'text'`` without case: ILIKE with no wildcard is that comparison, and DuckDB
    runs it about twice as fast as ``lower(other) = lower(?)`` (10M rows: 65 vs 140 ms)."""
    if "%" in text or "_" in text:
        sql = f"(lower({other.sql}) = lower(?))"
    else:
        sql = f"({other.sql} ILIKE ?)"
    return (f"(NOT {sql})" if negated else sql), [*other_params, text]


def _compare(e: _Emitter, operator: str, node: exp.Expression) -> Out:
    """``a <operator> b``: kinds checked; text without case unless the dataset wants case."""
    a, b = node.this, node.expression
    for column, value, sides in ((a, b, ("v", "?")), (b, a, ("?", "v"))):
        field, text = _enum_field(e, column), _text_literal(value)
        if field is not None and text is not None:
            if e.case_sensitive and operator in ("=", "<>"):  # exact: no need to ask DuckDB
                labels = field[1]
                codes = [i for i, label in enumerate(labels) if (label == text) == (
                    operator == "=")]
                return e.add(*strings.membership(field[0], labels, codes))
            predicate = f"({_folded(e, sides[0])} {operator} {_folded(e, sides[1])})"
            return _on_labels(e, field, predicate, [text])
    left, left_params, right, right_params = _pair(e, a, b)
    _comparable(node, left, right)
    literal = right if right.literal is not None else left if left.literal is not None else None
    if (e.case_sensitive or left.kind != TEXT or right.kind != TEXT
            or (literal is not None and not strings.cased(literal.literal or ""))):
        return e.add(f"({left.sql} {operator} {right.sql})", left_params + right_params)
    if operator in ("=", "<>") and literal is not None:
        other, other_params = (left, left_params) if literal is right else (right, right_params)
        return e.add(*_text_equal(other, other_params, literal.literal or "", operator == "<>"))
    return e.add(f"(lower({left.sql}) {operator} lower({right.sql}))",
                 left_params + right_params)


def _comparison(operator: str) -> Callable[[_Emitter, exp.Expression], Out]:
    def emit(e: _Emitter, node: exp.Expression) -> Out:
        return _compare(e, operator, node)

    return emit


def _in_list(e: _Emitter, node: exp.Expression, column: exp.Expression,
             items: list[exp.Expression]) -> Out:
    """``column IN (items)``, for IN and for ORed equalities on one field."""
    texts = [_text_literal(item) for item in items]
    quoted = [text for text in texts if text is not None]
    field = _enum_field(e, column)
    if field is not None and len(quoted) == len(items):
        if e.case_sensitive:
            wanted = set(quoted)
            codes = [i for i, label in enumerate(field[1]) if label in wanted]
            return e.add(*strings.membership(field[0], field[1], codes))
        return _on_labels(e, field, "(lower(v) IN (SELECT lower(unnest(?::VARCHAR[]))))",
                          [quoted])
    target, target_params = e.apart(column)
    values = [_beside(e, item, target.kind) for item in items]
    _comparable(node, target, *(out for out, _ in values))
    nocase = (not e.case_sensitive and target.kind == TEXT
              and any(out.kind == TEXT for out, _ in values)
              and not all(out.literal is not None and not strings.cased(out.literal)
                          for out, _ in values))
    if nocase and len(quoted) == len(items):
        if len(quoted) == 1:
            return e.add(*_text_equal(target, target_params, quoted[0], False))
        # A semi-join on the lowered values: DuckDB runs ``lower(x) IN (...)`` as ORed
        # comparisons (10M rows, 50 values: 1.2 s), the join at the cost of lower() (0.19 s).
        return e.add(f"(lower({target.sql}) IN (SELECT lower(unnest(?::VARCHAR[]))))",
                     [*target_params, quoted])
    wrap = (lambda sql: f"lower({sql})") if nocase else (lambda sql: sql)
    params = list(target_params)
    for _, item_params in values:
        params.extend(item_params)
    items_sql = ", ".join(wrap(out.sql) for out, _ in values)
    return e.add(f"({wrap(target.sql)} IN ({items_sql}))", params)


def _in(e: _Emitter, node: exp.In) -> Out:
    if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
        raise _Rejected("IN takes a list of values only")
    if not node.expressions:
        raise _Rejected("IN needs at least one value")
    return _in_list(e, node, node.this, list(node.expressions))


def _between(e: _Emitter, node: exp.Between) -> Out:
    low, high = node.args["low"], node.args["high"]
    field = _enum_field(e, node.this)
    bounds = [_text_literal(low), _text_literal(high)]
    if field is not None and None not in bounds:
        predicate = (f"({_folded(e, 'v')} BETWEEN {_folded(e, '?')} "
                     f"AND {_folded(e, '?')})")
        return _on_labels(e, field, predicate, bounds)
    target, target_params = e.apart(node.this)
    low_out, low_params = _beside(e, low, target.kind)
    high_out, high_params = _beside(e, high, target.kind)
    _comparable(node, target, low_out, high_out)
    parts = [target, low_out, high_out]
    if not e.case_sensitive and target.kind == TEXT and not all(
            out.literal is not None and not strings.cased(out.literal) for out in parts[1:]):
        parts = [Out(f"lower({out.sql})") for out in parts]
    return e.add(f"({parts[0].sql} BETWEEN {parts[1].sql} AND {parts[2].sql})",
                 target_params + low_params + high_params)


def _like(e: _Emitter, node: exp.Like, escape: str | None = None) -> Out:
    pattern_text = _text_literal(node.expression)
    if escape is not None:
        if pattern_text is None:
            raise _Rejected("ESCAPE needs a quoted pattern")
        _check_escapes(pattern_text, escape)
    operator = "LIKE" if e.case_sensitive else "ILIKE"
    escaped = [] if escape is None else [escape]
    tail = "" if escape is None else " ESCAPE ?"
    field = _enum_field(e, node.this)
    if field is not None and pattern_text is not None:
        return _on_labels(e, field, f"(v {operator} ?{tail})", [pattern_text, *escaped])
    text, text_params = e.apart(node.this, "LIKE", TEXT)
    pattern, pattern_params = e.apart(node.expression, "LIKE", TEXT)
    params = text_params + pattern_params + escaped
    if pattern_text is not None and not strings.cased(pattern_text):
        operator = "LIKE"  # no letters with a case: the exact match is the same, and faster
    elif operator == "ILIKE" and escape is None and (pattern_text or "").startswith("%"):
        # A leading wildcard: lower() then LIKE beats ILIKE (10M rows: 160 vs 315 ms).
        return e.add(f"(lower({text.sql}) LIKE lower({pattern.sql}))", params)
    return e.add(f"({text.sql} {operator} {pattern.sql}{tail})", params)


def _check_escapes(pattern: str, escape: str) -> None:
    """DuckDB refuses a pattern that ends with its escape character (at run time)."""
    i = 0
    while i < len(pattern):
        if pattern[i] == escape:
            if i + 1 == len(pattern):
                raise _Rejected("the LIKE pattern ends with its ESCAPE character")
            i += 1
        i += 1


def _escape(e: _Emitter, node: exp.Escape) -> Out:
    like = node.this
    if not isinstance(like, exp.Like):
        raise _Rejected("ESCAPE goes with LIKE")
    escape = node.expression
    if not (isinstance(escape, exp.Literal) and escape.is_string and len(escape.this) == 1):
        raise _Rejected("ESCAPE takes one character")
    return _like(e, like, escape.this)


def _is(e: _Emitter, node: exp.Is) -> Out:
    if not isinstance(node.expression, exp.Null):
        raise _Rejected("IS takes NULL only")
    return Out(f"({e.sql(node.this)} IS NULL)", BOOL)


# --- operators ------------------------------------------------------------------------------

ARITHMETIC = (NUMBER, DATE_KIND)  # what +, -, *, /, % take (a date plus milliseconds)
NUMERIC = (NUMBER,)  # what numeric functions take


def _arithmetic(operator: str) -> Callable[[_Emitter, exp.Expression], Out]:
    def emit(e: _Emitter, node: exp.Expression) -> Out:
        what = f"'{operator}'"
        left = e.value(node.this, what, *ARITHMETIC)
        right = e.value(node.expression, what, *ARITHMETIC)
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
    terms = [(op, e.value(operand, "'+'", *ARITHMETIC)) for op, operand in links]
    kind = DATE_KIND if any(out.kind == DATE_KIND for _, out in terms) else NUMBER
    sql, _ = _balanced([(out.sql, isinstance(op, exp.Sub)) for op, out in terms], "+", "-")
    return Out(sql, kind)


def _product(e: _Emitter, node: exp.Expression) -> Out:
    links = _left_chain(node, (exp.Mul,))
    if len(links) == 2:
        return _arithmetic("*")(e, node)
    sql, _ = _balanced([(e.sql(operand, "'*'", *ARITHMETIC), False) for _, operand in links],
                       "*", "/")
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
            return Out("(" + " OR ".join(_or_terms(e, operands)) + ")", BOOL)
        return Out("(" + f" {operator} ".join(e.condition(o) for o in operands) + ")", BOOL)

    return emit


def _not(e: _Emitter, node: exp.Not) -> Out:
    return Out(f"(NOT {e.condition(node.this)})", BOOL)


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
            terms.append(e.condition(operand))
        elif group[0] is operand:
            column = next(side for side in (operand.this, operand.expression)
                          if isinstance(side, exp.Column))
            literals = [member.expression if isinstance(member.this, exp.Column)
                        else member.this for member in group]
            terms.append(_in_list(e, operand, column, literals).sql)
    return terms


# --- functions ------------------------------------------------------------------------------

def _function(template: str, kind: str | None, takes: tuple[str, ...], *args: str
              ) -> Callable[[_Emitter, Any], Out]:
    """``template`` with {0}, {1}... filled by the node's named arguments, in order, each of
    one of the kinds ``takes``."""

    def emit(e: _Emitter, node: exp.Expression) -> Out:
        what = _describe(node)
        values = []
        for name in args:
            child = node.args.get(name)
            values.append(None if child is None else e.sql(child, what, *takes))
        return Out(template.format(*values), kind)

    return emit


def _round(e: _Emitter, node: exp.Round) -> Out:
    value = e.sql(node.this, "function ROUND()", NUMBER)
    digits = node.args.get("decimals")
    places = e.sql(digits, "function ROUND()", NUMBER) if digits else "0"
    return Out(f"round({value}, TRY_CAST({places} AS INTEGER))", NUMBER)


def _log(e: _Emitter, node: exp.Log) -> Out:
    if node.expression is None:  # LOG(x): natural logarithm, as in ArcGIS standardized SQL
        return Out(f"ln({e.sql(node.this, 'function LOG()', NUMBER)})", NUMBER)
    base = node.this
    if isinstance(base, exp.Literal) and base.this == "10":
        return Out(f"log10({e.sql(node.expression, 'function LOG()', NUMBER)})", NUMBER)
    raise _Rejected("LOG takes one argument (use LOG10 for base 10)")


def _anonymous(e: _Emitter, node: exp.Anonymous) -> Out:
    name = node.name.upper()
    if name not in ("TRUNCATE", "LOG10"):
        raise _Rejected(f"function {name}() is not supported")
    args = [e.sql(a, f"function {name}()", NUMBER) for a in node.expressions]
    if name == "TRUNCATE" and len(args) in (1, 2):
        digits = args[1] if len(args) == 2 else "0"
        return Out(f"trunc({args[0]}, TRY_CAST({digits} AS INTEGER))", NUMBER)
    if name == "LOG10" and len(args) == 1:
        return Out(f"log10({args[0]})", NUMBER)
    raise _Rejected(f"function {name}() takes other arguments")


def _extract(e: _Emitter, node: exp.Extract) -> Out:
    part = node.this.name.upper()
    if part not in EXTRACT_PARTS:
        raise _Rejected(f"EXTRACT({part}) is not supported")
    value = e.value(node.expression)
    if value.kind != DATE_KIND:
        raise _Rejected("EXTRACT applies to dates")
    return Out(f"CAST(extract({part.lower()} FROM epoch_ms({value.sql})) AS BIGINT)", NUMBER)


def _trim(e: _Emitter, node: exp.Trim) -> Out:
    position = str(node.args.get("position") or "BOTH").upper()
    function = {"BOTH": "trim", "LEADING": "ltrim", "TRAILING": "rtrim"}.get(position)
    if function is None:
        raise _Rejected(f"TRIM {position} is not supported")
    text = e.sql(node.this, "function TRIM()", TEXT)
    characters = node.args.get("expression")
    if characters is None:
        return Out(f"{function}({text})", TEXT)
    return Out(f"{function}({text}, {e.sql(characters, 'function TRIM()', TEXT)})", TEXT)


def _substring(e: _Emitter, node: exp.Substring) -> Out:
    what = "function SUBSTRING()"
    start = node.args.get("start")
    length = node.args.get("length")
    text = e.sql(node.this, what, TEXT)
    # Positions are whole numbers to DuckDB: a double (``ratio``) would match no substring().
    begin = f"TRY_CAST({e.sql(start, what, NUMBER)} AS BIGINT)" if start is not None else "1"
    if length is None:
        return Out(f"substring({text}, {begin})", TEXT)
    count = f"TRY_CAST({e.sql(length, what, NUMBER)} AS BIGINT)"
    return Out(f"substring({text}, {begin}, {count})", TEXT)


def _concat(e: _Emitter, node: exp.Expression) -> Out:
    if isinstance(node, exp.Concat):
        parts = node.expressions
    else:  # a || b || c: one concat() call, not one per operator
        parts = [operand for _, operand in _left_chain(node, (exp.DPipe,))]
    return Out("concat(" + ", ".join(e.sql(p) for p in parts) + ")", TEXT)


def _coalesce(e: _Emitter, node: exp.Coalesce) -> Out:
    values = [e.value(node.this)] + [e.value(x) for x in node.expressions]
    _comparable(node, *values)
    kind = next((v.kind for v in values if v.kind is not None), None)
    return Out("coalesce(" + ", ".join(v.sql for v in values) + ")", kind)


def _nullif(e: _Emitter, node: exp.Nullif) -> Out:
    left, left_params, right, right_params = _pair(e, node.this, node.expression)
    _comparable(node, left, right)
    return e.add(f"nullif({left.sql}, {right.sql})", left_params + right_params,
                 left.kind or right.kind)


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
        if e.aggregating:
            raise _Rejected(f"aggregate functions cannot be nested: {_snippet(node)}")
        e.aggregating = True
        try:
            if function == "count":
                return Out(f"count({e.sql(argument)})", NUMBER)
            if function in ("min", "max"):  # of any kind, and of that kind
                value = e.value(argument)
                return Out(f"{function}({value.sql})", value.kind)
            return Out(f"{function}({e.sql(argument, _describe(node), NUMBER)})", NUMBER)
        finally:
            e.aggregating = False

    return emit


def _paren(e: _Emitter, node: exp.Paren) -> Out:
    inner = e.emit(node.this)
    return Out(f"({inner.sql})", inner.kind)


def _negative(e: _Emitter, node: exp.Neg) -> Out:
    return Out(f"(-{e.sql(node.this, 'a minus sign', NUMBER)})", NUMBER)



EMITTERS: dict[type[exp.Expression], Callable[[_Emitter, Any], Out]] = {
    exp.Column: _column,
    exp.Literal: _literal,
    exp.Null: lambda e, n: Out("NULL"),
    exp.Boolean: lambda e, n: Out("TRUE" if n.this else "FALSE", BOOL),
    exp.Paren: _paren,
    exp.Not: _not,
    exp.Neg: _negative,
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
    exp.Mod: _function("({0} % {1})", NUMBER, NUMERIC, "this", "expression"),
    exp.Like: _like,
    exp.Escape: _escape,
    exp.In: _in,
    exp.Between: _between,
    exp.Is: _is,
    exp.Cast: _cast,
    exp.Upper: _function("upper({0})", TEXT, (TEXT,), "this"),
    exp.Lower: _function("lower({0})", TEXT, (TEXT,), "this"),
    exp.Abs: _function("abs({0})", NUMBER, NUMERIC, "this"),
    exp.Ceil: _function("ceil({0})", NUMBER, NUMERIC, "this"),
    exp.Floor: _function("floor({0})", NUMBER, NUMERIC, "this"),
    exp.Round: _round,
    exp.Pow: _function("pow({0}, {1})", NUMBER, NUMERIC, "this", "expression"),
    exp.Log: _log,
    exp.Length: _function("length({0})", NUMBER, (TEXT,), "this"),
    exp.Concat: _concat,
    exp.DPipe: _concat,
    exp.StrPosition: _function("strpos({0}, {1})", NUMBER, (TEXT,), "this", "substr"),
    exp.Substring: _substring,
    exp.Trim: _trim,
    exp.Coalesce: _coalesce,
    exp.Nullif: _nullif,
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
