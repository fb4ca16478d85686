"""Staged columns and the SQL of their final values, with normalize's conversion rules.

A column of table ``typed`` is ``c<index>``: a GeoJSON property parsed into DOUBLE, VARCHAR,
BOOLEAN or (mixed, declared, names differing only in case) JSON; or a CSV cell as trimmed
text. ``value_sql`` turns it into its Esri type's DuckDB type exactly as
``values.coerce_column`` converts Python values (what cannot be converted is NULL).
"""

from __future__ import annotations

from dataclasses import dataclass

from koop_app.data import duck
from koop_app.data.schema import DATE, DOUBLE, INTEGER, SMALL_INTEGER, STRING
from koop_app.data.values import INT32_MAX, INT32_MIN, ISO_DATE

s = duck.quote_string

# What json_type() says -> a bit per JSON kind.
KIND_INT, KIND_FLOAT, KIND_TEXT, KIND_BOOL, KIND_NESTED = 1, 2, 4, 8, 16
KIND_CODE = (f"CASE coalesce({{}}, 'NULL') WHEN 'BIGINT' THEN {KIND_INT} "
             f"WHEN 'UBIGINT' THEN {KIND_INT} "
             f"WHEN 'DOUBLE' THEN {KIND_FLOAT} WHEN 'VARCHAR' THEN {KIND_TEXT} "
             f"WHEN 'BOOLEAN' THEN {KIND_BOOL} WHEN 'NULL' THEN 0 "
             f"ELSE {KIND_NESTED} END")
ISO_SQL = s(ISO_DATE.pattern.removeprefix("^").removesuffix("$"))
TRUE_SQL = "('true', 't', 'yes', 'y', '1')"
FALSE_SQL = "('false', 'f', 'no', 'n', '0')"


@dataclass
class Column:
    source: str  # the property name in the data
    name: str  # the column name (unique case-insensitively)
    index: int = 0  # its column in table typed is c<index>
    kinds: int = 0
    # Read as JSON by pointer, not through the STRUCT (whose names ignore case): names that
    # differ only in case.
    by_pointer: bool = False
    csv: bool = False  # a CSV column: trimmed text, typed by csv_.reader's rules
    csv_type: str = "String"  # Integer, Double, Boolean, Date, String
    esri: str = STRING
    boolean: bool = False
    declared: bool = False
    alias: str = ""
    length: int | None = None
    enum_values: tuple[str, ...] | None = None

    @property
    def mixed(self) -> bool:
        """Values of several JSON kinds (numbers aside), or nested ones: String."""
        return bool(self.kinds & KIND_NESTED) or (bin(self.kinds).count("1") > 1 and bool(
            self.kinds & ~(KIND_INT | KIND_FLOAT)))

    @property
    def sql(self) -> str:
        return f"c{self.index}"

    @property
    def staged(self) -> str:
        """The DuckDB type its values are parsed into."""
        if self.csv:
            return "VARCHAR"
        if self.declared or self.by_pointer or self.mixed:
            return "JSON"
        if self.kinds & (KIND_INT | KIND_FLOAT):
            return "DOUBLE"
        if self.kinds == KIND_BOOL:
            return "BOOLEAN"
        return "VARCHAR"


def value_sql(column: Column | None) -> str:
    """The SQL of a column's final value (its Esri type's DuckDB type)."""
    assert column is not None
    v = column.sql
    if column.csv:
        natural = _csv_natural(column)
        if column.declared:  # an override: converted as normalize converts a typed value
            return convert_json(f"to_json({natural})", column.esri, column.boolean)
        if column.csv_type == "Date":
            return f"epoch_ms(TRY_CAST({v} AS TIMESTAMPTZ))"
        if column.csv_type == "Boolean":
            return f"CAST(CAST({natural} AS INTEGER) AS SMALLINT)"
        return f"CAST({natural} AS {_CSV_SQL[column.csv_type]})"
    if column.staged == "JSON":
        # Numbers of a column holding floats are floats, as Arrow types them in normalize.
        floats = column.kinds & KIND_FLOAT and not column.kinds & ~(KIND_INT | KIND_FLOAT)
        return convert_json(v, column.esri, column.boolean, bool(floats))
    if column.esri == DATE:
        return f"epoch_ms(TRY_CAST(trim({v}) AS TIMESTAMPTZ))"
    if column.esri == INTEGER:
        return f"CAST({v} AS INTEGER)"
    if column.esri == SMALL_INTEGER:  # booleans
        return f"CAST({v} AS SMALLINT)"
    if column.esri == DOUBLE:
        return f"CAST({v} AS DOUBLE)"
    return f"CAST({v} AS VARCHAR)"


_CSV_SQL = {"Integer": "INTEGER", "Double": "DOUBLE", "String": "VARCHAR", "Date": "VARCHAR"}


def _csv_natural(column: Column) -> str:
    """A CSV cell as the Python value csv_.reader makes of it (as SQL)."""
    v = column.sql
    if column.csv_type == "Integer":
        return f"CAST({v} AS BIGINT)"
    if column.csv_type == "Double":
        return f"CAST({v} AS DOUBLE)"
    if column.csv_type == "Boolean":
        return f"(lower({v}) = 'true')"
    return v


def convert_json(v: str, esri: str, boolean: bool, floats: bool = False) -> str:
    """Convert a JSON value as values.coerce_column does (unconvertible values: NULL)."""
    kind = f"json_type({v})"
    text = f"({v} ->> '$')"
    number = f"TRY_CAST({v} AS DOUBLE)"  # TRY: DuckDB may hoist it out of its CASE branch
    trimmed = f"trim({text})"
    if esri == STRING:
        if floats:
            return f"CAST({number} AS VARCHAR)"
        return (f"CASE {kind} WHEN 'VARCHAR' THEN {text} WHEN 'NULL' THEN NULL "
                f"WHEN 'BOOLEAN' THEN CASE WHEN TRY_CAST({v} AS BOOLEAN) THEN 'true' ELSE 'false' "
                f"END WHEN 'DOUBLE' THEN CAST({number} AS VARCHAR) "
                f"ELSE CAST({v} AS VARCHAR) END")
    if boolean:
        return (f"CAST(CASE {kind} WHEN 'BOOLEAN' THEN CAST(TRY_CAST({v} AS BOOLEAN) AS INTEGER) "
                f"WHEN 'VARCHAR' THEN CASE WHEN lower({trimmed}) IN {TRUE_SQL} THEN 1 "
                f"WHEN lower({trimmed}) IN {FALSE_SQL} THEN 0 END "
                f"WHEN 'NULL' THEN NULL "
                f"ELSE CASE WHEN {number} IN (0, 1) THEN CAST({number} AS INTEGER) END "
                f"END AS SMALLINT)")
    if esri == DATE:
        return (f"CASE {kind} WHEN 'VARCHAR' THEN CASE WHEN regexp_full_match({trimmed}, "
                f"{ISO_SQL}) THEN epoch_ms(TRY_CAST({trimmed} AS TIMESTAMPTZ)) END "
                f"WHEN 'BIGINT' THEN TRY_CAST({v} AS BIGINT) "
                f"WHEN 'UBIGINT' THEN TRY_CAST({v} AS BIGINT) "
                f"WHEN 'DOUBLE' THEN CASE WHEN isfinite({number}) "
                f"THEN CAST(trunc({number}) AS BIGINT) END END")
    if esri == DOUBLE:
        return (f"CASE {kind} WHEN 'BOOLEAN' THEN CAST(TRY_CAST({v} AS BOOLEAN) AS DOUBLE) "
                f"WHEN 'VARCHAR' THEN CASE WHEN isfinite(TRY_CAST({trimmed} AS DOUBLE)) "
                f"THEN TRY_CAST({trimmed} AS DOUBLE) END "
                f"WHEN 'BIGINT' THEN {number} WHEN 'UBIGINT' THEN {number} "
                f"WHEN 'DOUBLE' THEN {number} END")
    # Integers: whole numbers only; Integer within 32 bits.
    whole = (f"CASE {kind} WHEN 'BOOLEAN' THEN CAST(TRY_CAST({v} AS BOOLEAN) AS BIGINT) "
             f"WHEN 'VARCHAR' THEN coalesce(TRY_CAST({trimmed} AS BIGINT), CASE WHEN "
             f"TRY_CAST({trimmed} AS DOUBLE) = trunc(TRY_CAST({trimmed} AS DOUBLE)) THEN "
             f"TRY_CAST(TRY_CAST({trimmed} AS DOUBLE) AS BIGINT) END) "
             f"WHEN 'BIGINT' THEN TRY_CAST({v} AS BIGINT) "
             f"WHEN 'UBIGINT' THEN TRY_CAST({v} AS BIGINT) "
             f"WHEN 'DOUBLE' THEN CASE WHEN {number} = trunc({number}) "
             f"THEN TRY_CAST({number} AS BIGINT) END END")
    if esri == INTEGER:
        return (f"CAST(CASE WHEN ({whole}) BETWEEN {INT32_MIN} AND {INT32_MAX} "
                f"THEN ({whole}) END AS INTEGER)")
    if esri == SMALL_INTEGER:
        return f"CAST(CASE WHEN ({whole}) BETWEEN -32768 AND 32767 THEN ({whole}) END AS SMALLINT)"
    return f"CAST({whole} AS BIGINT)"
