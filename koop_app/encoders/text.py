"""Rows as JSON text, written by DuckDB over the engine's page: no Python loop per row."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pyarrow as pa
import pyarrow.compute as pc

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




# Pages that may hold more rows than this are streamed: sent while DuckDB writes them.
STREAM_ROWS = 5000
STREAM_BATCH_ROWS = 2048


class StreamedArray:
    """A JSON array of rows sent while it is written; ``more`` is known once it was read."""

    def __init__(self, page: Page, row_sql: str) -> None:
        self.page = page
        self.row_sql = row_sql
        self.more = False

    def chunks(self) -> Iterator[bytes]:
        page = self.page
        sql = f"SELECT {self.row_sql} AS t FROM ({page.sql}) AS page ORDER BY {page.order}"
        rows = execute(sql, page.params, page.rows, page.relations)
        keep = page.more_after  # rows to send; one more means more exist
        sent = 0
        yield b"["
        for batch in rows.batches(STREAM_BATCH_ROWS):
            texts = batch.column(0)
            if keep is not None and sent + len(texts) > keep:
                self.more = True
                texts = texts.slice(0, keep - sent)
            if len(texts):
                joined = pc.binary_join(pa.ListArray.from_arrays([0, len(texts)], texts), ",")
                yield (b"," if sent else b"") + joined[0].as_buffer().to_pybytes()
                sent += len(texts)
            if self.more:
                break
        yield b"]"


def streamable(page: Page) -> bool:
    """Whether ``page`` is streamed (large, and not all-or-nothing)."""
    return page.rows is None and not page.empty_if_more and (page.size or 0) > STREAM_ROWS


def array_or_stream(page: Page, row_sql: str, *, as_json: bool = True
                    ) -> tuple[orjson.Fragment | StreamedArray, bool]:
    """``array_text`` for small pages; a StreamedArray (whose ``more`` comes later) for large."""
    if not streamable(page):
        text, more = array_text(page, row_sql, as_json=as_json)
        return orjson.Fragment(text), more
    row = f"to_json({row_sql})::VARCHAR" if as_json else row_sql
    return StreamedArray(page, row), False


class MoreFlag:
    """``exceededTransferLimit`` of an answer whose features are streamed: true when the
    engine already knew, else what the stream found; written after the features."""

    def __init__(self, stream: StreamedArray, known: bool) -> None:
        self.stream, self.known = stream, known

    def value(self) -> bool:
        return self.known or self.stream.more


def more_flag(features: orjson.Fragment | StreamedArray, known: bool, more: bool
              ) -> bool | MoreFlag:
    return MoreFlag(features, known) if isinstance(features, StreamedArray) else known or more
