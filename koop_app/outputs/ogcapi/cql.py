"""CQL2 filters of OGC API - Features Part 3, read through ``koop_app.query.ogc_filter``.

pygeofilter 0.4's CQL2 text grammar has gaps that real filters hit; we close the ones that can
be closed without touching the parser, before and after it runs:

- single-letter property names (``a = 1``) do not parse: they are quoted first (``"a" = 1``),
  outside string literals and quoted names;
- a doubled quote inside a string (``'it''s'``) does not parse: it is replaced by a private-use
  character before parsing and turned back into a quote in the tree;
- LIKE's single-character wildcard is ``_`` in CQL2 (both encodings), but pygeofilter marks it
  as ``.``: the tree's LIKE nodes are corrected, so ``'a_c'`` matches ``abc`` and a ``.`` is a dot.

Still refused (400, not claimed in /conformance): function-style temporal predicates
(``T_AFTER(a, b)``), spatial predicates under OR/NOT, boolean literals.
"""

from __future__ import annotations

import re
from typing import Any

from pygeofilter import ast

from koop_app.errors import InvalidParameterError
from koop_app.query.ogc_filter import FilterError, parse_cql2_json, parse_cql2_text

TEXT, JSON = "cql2-text", "cql2-json"
# "cql-text": the draft's name, which GDAL up to 3.6 sends (and looks for in the API
# definition's filter-lang enum before it passes -where on); read as CQL2 text.
DRAFT_TEXT = "cql-text"
LANGUAGES = (TEXT, JSON, DRAFT_TEXT)
_WKT_TYPES = ("POINT", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING",
              "MULTIPOLYGON", "GEOMETRYCOLLECTION")
_QUOTE = "\ue000"  # stands for '' inside a string while pygeofilter reads the text
# A string literal, a quoted name, or a lone letter that is a whole word (not a function name).
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|(?<![\w.])([A-Za-z])(?![\w.(])")


def parse_filter(text: str, language: str | None) -> ast.Node:
    """The AST of filter ``text`` in ``language`` (cql2-text when None)."""
    language = (language or TEXT).strip().lower()
    if language not in LANGUAGES:
        raise InvalidParameterError("filter-lang", f"{language[:40]!r} is not one of "
                                    f"{', '.join(LANGUAGES)}")
    if not text.strip():
        raise FilterError("filter", "the filter is empty")
    if language == DRAFT_TEXT:
        language = TEXT
    if language == JSON:
        node = parse_cql2_json(text)
    else:
        node = parse_cql2_text(_prepared(text)) if _QUOTE not in text else parse_cql2_text(text)
    return _repaired(node)


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
