"""``where`` clauses: SQL text -> allow-listed sqlglot AST -> DuckDB SQL with bound literals.

Only the layer's fields, literals and the node types in ``EMITTERS`` pass; each emitter writes
its node from its already-emitted children. Literals become ``?`` parameters, so nothing from
the request is ever pasted into SQL text.

    clause = compile_where("name LIKE 'A%' AND value > 3", schema)
    clause.sql     # '("name" LIKE ? AND "value" > ?)'
    clause.params  # ['A%', 3]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from koop_app.data.duck import quote_ident
from koop_app.data.schema import LayerSchema
from koop_app.errors import InvalidParameterError

MAX_WHERE_LENGTH = 20_000
MAX_TOKENS = 2_000
MAX_DEPTH = 64  # parentheses and function calls nested in each other


@dataclass(frozen=True)
class WhereClause:
    sql: str
    params: tuple[Any, ...] = ()


@dataclass
class _Emitter:
    schema: LayerSchema
    params: list[Any] = field(default_factory=list)

    def emit(self, node: exp.Expression) -> str:
        handler = EMITTERS.get(type(node))
        if handler is None:
            raise _Rejected(f"{_describe(node)} is not supported")
        return handler(self, node)

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return "?"


class _Rejected(Exception):
    pass


def _describe(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return f"function {node.name.upper()}()"
    if isinstance(node, (exp.Select, exp.Subquery)):
        return "a subquery"
    if isinstance(node, exp.Func):
        return f"function {node.sql_name()}()"
    return f"'{node.key}'"


def compile_where(text: str | None, schema: LayerSchema) -> WhereClause | None:
    """Compile ``text`` against ``schema``; None for an absent or always-true clause."""
    if text is None or not text.strip():
        return None
    if len(text) > MAX_WHERE_LENGTH:
        raise InvalidParameterError("where", "the clause is too long")
    try:
        tokens = sqlglot.tokenize(text)
        if any(token.comments for token in tokens):
            raise _Rejected("comments are not allowed")
        if any(token.token_type == sqlglot.TokenType.SEMICOLON for token in tokens):
            raise _Rejected("';' is not allowed")
        _check_size(tokens)
        tree = sqlglot.parse_one(text)
        if _always_true(tree):
            return None
        emitter = _Emitter(schema)
        sql = emitter.emit(tree)
    except (ParseError, TokenError):
        raise InvalidParameterError("where", f"cannot parse {text!r}") from None
    except _Rejected as exc:
        raise InvalidParameterError("where", str(exc)) from None
    except RecursionError:
        raise InvalidParameterError("where", "the clause is too complex") from None
    return WhereClause(sql, tuple(emitter.params))


def _check_size(tokens: list[Any]) -> None:
    """Bound the work before parsing: the parser and emitter recurse on nesting."""
    if len(tokens) > MAX_TOKENS:
        raise _Rejected("the clause is too long")
    depth = 0
    for token in tokens:
        if token.token_type == sqlglot.TokenType.L_PAREN:
            depth += 1
            if depth > MAX_DEPTH:
                raise _Rejected("the clause is nested too deeply")
        elif token.token_type == sqlglot.TokenType.R_PAREN:
            depth -= 1


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


def _column(emitter: _Emitter, node: exp.Column) -> str:
    if node.table:
        raise _Rejected(f"qualified name {node.sql()!r} is not allowed")
    found = emitter.schema.field(node.name)
    if found is None:
        raise _Rejected(f"{node.name!r} is not a field of this layer")
    return quote_ident(found.name)


def _literal(emitter: _Emitter, node: exp.Literal) -> str:
    if node.is_string:
        return emitter.bind(node.this)
    text = node.this
    try:
        value: Any = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            raise _Rejected(f"{text!r} is not a number") from None
    return emitter.bind(value)


def _binary(operator: str) -> Callable[[_Emitter, exp.Expression], str]:
    def emit(emitter: _Emitter, node: exp.Expression) -> str:
        return f"({emitter.emit(node.this)} {operator} {emitter.emit(node.expression)})"

    return emit


def _unary(template: str) -> Callable[[_Emitter, exp.Expression], str]:
    def emit(emitter: _Emitter, node: exp.Expression) -> str:
        return template.format(emitter.emit(node.this))

    return emit


def _in(emitter: _Emitter, node: exp.In) -> str:
    if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
        raise _Rejected("IN takes a list of values only")
    items = ", ".join(emitter.emit(item) for item in node.expressions)
    return f"({emitter.emit(node.this)} IN ({items}))"


def _between(emitter: _Emitter, node: exp.Between) -> str:
    return (f"({emitter.emit(node.this)} BETWEEN {emitter.emit(node.args['low'])} "
            f"AND {emitter.emit(node.args['high'])})")


def _is(emitter: _Emitter, node: exp.Is) -> str:
    if not isinstance(node.expression, exp.Null):
        raise _Rejected("IS takes NULL only")
    return f"({emitter.emit(node.this)} IS NULL)"


def _escape(emitter: _Emitter, node: exp.Escape) -> str:
    like = node.this
    if not isinstance(like, exp.Like):
        raise _Rejected("ESCAPE goes with LIKE")
    escape = node.expression
    if not (isinstance(escape, exp.Literal) and escape.is_string and len(escape.this) == 1):
        raise _Rejected("ESCAPE takes one character")
    return (f"({emitter.emit(like.this)} LIKE {emitter.emit(like.expression)} "
            f"ESCAPE {emitter.bind(escape.this)})")


EMITTERS: dict[type[exp.Expression], Callable[[_Emitter, Any], str]] = {
    exp.Column: _column,
    exp.Literal: _literal,
    exp.Null: lambda e, n: "NULL",
    exp.Boolean: lambda e, n: "TRUE" if n.this else "FALSE",
    exp.Paren: _unary("({})"),
    exp.Not: _unary("(NOT {})"),
    exp.Neg: _unary("(-{})"),
    exp.And: _binary("AND"),
    exp.Or: _binary("OR"),
    exp.EQ: _binary("="),
    exp.NEQ: _binary("<>"),
    exp.GT: _binary(">"),
    exp.GTE: _binary(">="),
    exp.LT: _binary("<"),
    exp.LTE: _binary("<="),
    exp.Add: _binary("+"),
    exp.Sub: _binary("-"),
    exp.Mul: _binary("*"),
    exp.Div: _binary("/"),
    exp.Like: _binary("LIKE"),
    exp.Escape: _escape,
    exp.In: _in,
    exp.Between: _between,
    exp.Is: _is,
    exp.Upper: _unary("upper({})"),
    exp.Lower: _unary("lower({})"),
}
