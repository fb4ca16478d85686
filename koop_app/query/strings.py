"""How ``where`` compares text: without case by default, and on ENUM label sets.

ArcGIS Online's hosted layers keep their data in SQL Server with a case-insensitive collation:
``name = 'oak street'`` finds 'Oak Street', ``LIKE 'oak%'`` finds 'OAK', and ``<``, ``>``,
BETWEEN and IN ignore case as well. Here that is DuckDB's ``lower()`` on both sides (ILIKE is
the same comparison: one mapping from each character to its lower case, no accent folding).
A dataset may ask for case-sensitive comparisons instead (``Dataset.case_sensitive_strings``).

Hot tables keep few-valued text columns as ENUMs (``Field.enum_values``). A condition between
such a column and literals is decided once, at compile time, on the labels: DuckDB evaluates the
same text predicate on the list of labels, and the rows are then matched by label code, which
keeps ENUM and VARCHAR columns answering alike. ``membership`` writes the cheapest SQL for a set
of codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from koop_app.data.duck import enum_type

# Up to this many labels, the list is bound as one parameter; past it, as an Arrow table
# (binding 900 Python strings costs ~18 ms, registering them ~3 ms).
LIST_LABELS = 100
# Bit masks hold at most 64 codes (UBIGINT).
MASK_LABELS = 64

LABELS_RELATION = "_koop_labels"


def cased(text: str) -> bool:
    """Whether ``text`` holds a character with another case: only then does case matter.

    A text without one compares the same with and without case (no other character has it as
    its lower case; tests/query/test_strings.py checks this on every code point).
    """
    return any(ch.lower() != ch or ch.upper() != ch for ch in text)


def label_codes(labels: Sequence[str], predicate: str, params: Sequence[Any]) -> list[int]:
    """The codes (positions) of the labels for which ``predicate`` on column ``v`` is true.

    ``predicate`` is our own SQL with ``?`` for ``params``, never request text. It runs through
    the engine's one door (time limit, errors mapped to 400s), imported here and not at the top:
    the engine imports the compiled clause's module, which imports this one.
    """
    from koop_app.query.engine import execute

    if len(labels) <= LIST_LABELS:
        rows = execute("SELECT list(i ORDER BY i) FROM (SELECT unnest(?::VARCHAR[]) AS v, "
                       f"unnest(range(?)) AS i) WHERE {predicate}",
                       [list(labels), len(labels), *params])
    else:
        table = pa.table({"v": pa.array(labels, pa.string()),
                          "i": pa.array(range(len(labels)), pa.int64())})
        rows = execute(f"SELECT list(i ORDER BY i) FROM {LABELS_RELATION} WHERE {predicate}",
                       list(params), relations={LABELS_RELATION: table})
    row = rows.fetchone()
    return list(row[0] or []) if row else []


def membership(column: str, labels: Sequence[str], codes: Sequence[int]
               ) -> tuple[str, list[Any]]:
    """SQL true when the ENUM ``column`` holds one of ``codes``, NULL when it is NULL.

    One code compares ENUM values (small integers); a few labels test one bit of a mask of the
    codes (one integer operation per row, where DuckDB runs an IN list as ORed comparisons).
    """
    count, chosen = len(labels), sorted(set(codes))
    if not chosen:
        return f"(enum_code({column}) < 0)", []  # false, or NULL on NULL
    if len(chosen) == count:
        return f"(enum_code({column}) >= 0)", []  # true, or NULL on NULL
    enum = enum_type(labels)
    if len(chosen) == 1:
        return f"({column} = CAST(? AS {enum}))", [labels[chosen[0]]]
    if len(chosen) == count - 1:
        (left_out,) = set(range(count)) - set(chosen)
        return f"({column} <> CAST(? AS {enum}))", [labels[left_out]]
    if count <= MASK_LABELS:
        mask = sum(1 << code for code in chosen)
        return f"(((1::UBIGINT << enum_code({column})) & CAST(? AS UBIGINT)) <> 0)", [mask]
    if chosen[-1] - chosen[0] + 1 == len(chosen):  # a range of labels, as < and > select
        return f"(enum_code({column}) BETWEEN ? AND ?)", [chosen[0], chosen[-1]]
    return f"(enum_code({column}) IN ({', '.join('?' * len(chosen))}))", chosen
