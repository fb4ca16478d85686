"""Rows as JSON text, written by DuckDB over the engine's page: no Python loop per row."""

from __future__ import annotations

from koop_app.data.duck import quote_ident, quote_string
from koop_app.data.schema import Field
from koop_app.query import Page, execute


def attributes_sql(fields: tuple[Field, ...]) -> str:
    return "{" + ", ".join(f"{quote_string(f.name)}: {quote_ident(f.name)}" for f in fields) + "}"


def array_text(page: Page, row_sql: str, *, as_json: bool = True) -> tuple[str, bool]:
    """The page's rows as a JSON array (``row_sql`` per row), and whether rows exist past it.

    ``row_sql`` is a struct for ``to_json`` or, with ``as_json=False``, JSON text already.
    """
    row = f"to_json({row_sql})::VARCHAR" if as_json else row_sql
    if page.more_after is None:
        sql = (f"SELECT '[' || coalesce(string_agg({row}, ',' ORDER BY {page.order}), '') "
               f"|| ']', false FROM ({page.sql}) AS page")
    else:
        # One row past the page was read: leave it out, and say that it was there.
        limit = int(page.more_after)
        sql = (f"SELECT '[' || coalesce(string_agg({row}, ',' ORDER BY {page.order}) "
               f"FILTER (WHERE _koop_n <= {limit}), '') || ']', count(*) > {limit} "
               f"FROM (SELECT *, row_number() OVER (ORDER BY {page.order}) AS _koop_n "
               f"FROM ({page.sql}) AS page) AS page")
    text, more = execute(sql, page.params, page.rows, page.relations).fetchone()
    if more and page.empty_if_more:
        return "[]", True
    return text, bool(more)


