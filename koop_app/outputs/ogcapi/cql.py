"""CQL2 filters of OGC API - Features Part 3, read through ``koop_app.query.ogc_filter``
(which closes pygeofilter's known gaps: single-letter names, ``''`` in strings, LIKE's ``_``).

Still refused (400, not claimed in /conformance): function-style temporal predicates
(``T_AFTER(a, b)``), spatial predicates under OR/NOT, boolean literals.
"""

from __future__ import annotations

from pygeofilter import ast

from koop_app.errors import InvalidParameterError
from koop_app.query.ogc_filter import FilterError, parse_cql2_json, parse_cql2_text

TEXT, JSON = "cql2-text", "cql2-json"
# "cql-text": the draft's name, which GDAL up to 3.6 sends (and looks for in the API
# definition's filter-lang enum before it passes -where on); read as CQL2 text.
DRAFT_TEXT = "cql-text"
LANGUAGES = (TEXT, JSON, DRAFT_TEXT)


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
    return parse_cql2_json(text) if language == JSON else parse_cql2_text(text)
