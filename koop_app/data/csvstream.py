"""A CSV file -> table ``typed`` for ``stream.normalize_staged``, with csv_.reader's rules.

    columns, count = stage_csv(con, path, options, workdir)

The text is made UTF-8 first when it is not (the encoding option, a UTF-16 BOM, or bytes
that are not UTF-8: Windows-1252), streaming into a file in ``workdir``. DuckDB's read_csv
reads every cell as text with the delimiter given or sniffed here; cells are trimmed, empty
ones null. Each column is then typed from all its values in SQL (Integer, Double, Boolean,
Date, String, as the reader does) and the geometry built from latitude/longitude or WKT.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from koop_app.data import duck
from koop_app.data.columns import ISO_SQL, Column
from koop_app.data.normalize import _column_name
from koop_app.errors import SourceFormatError

ColumnT = TypeVar("ColumnT")

q, s = duck.quote_ident, duck.quote_string
DELIMITERS = ",;\t|"
SNIFF_BYTES = 64 * 1024
CHUNK = 4 * 1024 * 1024
LATITUDE_NAMES = ("latitude", "lat", "y", "ycoord", "lat_dd")
LONGITUDE_NAMES = ("longitude", "lon", "lng", "long", "x", "xcoord", "lon_dd")
WKT_NAMES = ("wkt", "geometry", "geom", "the_geom", "shape")
INT32 = 2**31 - 1


def _bad(reason: str) -> SourceFormatError:
    return SourceFormatError(f"The CSV source cannot be read: {reason}.")


def utf8_file(path: Path, encoding: str | None, workdir: Path) -> Path:
    """``path`` if it is UTF-8 text (BOM or not), else a UTF-8 copy of it in ``workdir``."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if encoding:
        name = codecs.lookup(encoding).name
        if name in ("utf-8", "utf-8-sig"):
            return path
        return _transcode(path, encoding, workdir, "strict")
    if head.startswith(codecs.BOM_UTF8):
        return path
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _transcode(path, "utf-16", workdir, "strict")
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        return path
    except UnicodeDecodeError:
        return _transcode(path, "cp1252", workdir, "replace")


def _transcode(path: Path, encoding: str, workdir: Path, errors: str) -> Path:
    target = workdir / "source.utf8.csv"
    decoder = codecs.getincrementaldecoder(encoding)(errors)
    try:
        with path.open("rb") as source, target.open("w", encoding="utf-8", newline="") as out:
            while chunk := source.read(CHUNK):
                out.write(decoder.decode(chunk))
            out.write(decoder.decode(b"", final=True))
    except UnicodeDecodeError as exc:
        raise _bad(str(exc)) from None
    return target


def sniff_delimiter(text: str) -> str:
    """The delimiter of a CSV's first bytes; the CSV provider's reader uses the same rule."""
    sample = text[:SNIFF_BYTES]
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample else ""
        return max(DELIMITERS, key=first.count)


def _header(path: Path, delimiter: str | None) -> tuple[list[str], str]:
    """The header's column names (as the reader cleans them) and the delimiter."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES).decode("utf-8-sig", errors="ignore")
    delimiter = delimiter or sniff_delimiter(head)
    row = next(csv.reader(io.StringIO(head, newline=""), delimiter=delimiter), None)
    if not row:
        raise _bad("the CSV is empty")
    names = [name.strip() or f"field_{i + 1}" for i, name in enumerate(row)]
    if len({n.lower() for n in names}) != len(names):
        raise _bad("the CSV header repeats a column name")
    return names, delimiter


def stage_csv(con: duckdb.DuckDBPyConnection, path: Path, options: Mapping[str, Any],
              workdir: Path) -> tuple[list[Column], int]:
    """Table typed (c0.., id, digest, g, given) from the CSV at ``path``."""
    path = utf8_file(path, options.get("encoding"), workdir)
    header, delimiter = _header(path, options.get("delimiter"))
    canonical: dict[str, str] = {}
    columns = [Column(name, _column_name(name, canonical), index, csv=True)
               for index, name in enumerate(header)]
    spec = "{" + ", ".join(f"{s(c.sql)}: 'VARCHAR'" for c in columns) + "}"
    cells = ", ".join(f"nullif(trim({c.sql}), '') AS {c.sql}" for c in columns)
    empty = " AND ".join(f"{c.sql} IS NULL" for c in columns)
    try:
        con.execute(f"""
            CREATE OR REPLACE TABLE cells AS
            SELECT {cells} FROM read_csv({s(str(path))}, delim = {s(delimiter)}, quote = '"',
                escape = '"', header = true, auto_detect = false, columns = {spec},
                null_padding = true, strict_mode = true)
        """)
    except duckdb.Error as exc:
        raise SourceFormatError("The CSV source cannot be read.",
                                log_message=f"read_csv: {exc}") from None
    if len(columns) == 1:  # a blank line is a row of one empty cell: the reader skips it
        con.execute(f"DELETE FROM cells WHERE {empty}")
    _type(con, columns)
    by_name = {c.source.lower(): c for c in columns}
    geometry = _geometry(by_name, options)
    digest = "md5(concat_ws(chr(31), " + ", ".join(
        f"coalesce({c.sql}, chr(30))" for c in columns) + "))"
    con.execute(f"""
        CREATE OR REPLACE TABLE typed AS
        SELECT {", ".join(c.sql for c in columns)}, CAST(NULL AS JSON) AS id,
               {digest} AS digest, {geometry} AS g, false AS given
        FROM cells
    """)
    con.execute("DROP TABLE cells")
    (count,) = con.execute("SELECT count(*) FROM typed").fetchone()
    return columns, int(count)


def _type(con: duckdb.DuckDBPyConnection, columns: list[Column]) -> None:
    """Each column's type from all its values, as csv_.reader._typed decides it."""
    integer, number = r"'[+-]?\d+'", r"'[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?'"
    parts = []
    for c in columns:
        v = c.sql
        parts += [f"count({v})",
                  f"bool_and(regexp_full_match({v}, {integer}) AND "
                  f"abs(TRY_CAST({v} AS HUGEINT)) <= {INT32})",
                  f"bool_and(regexp_full_match({v}, {integer}) OR "
                  f"regexp_full_match({v}, {number}))",
                  f"bool_and(lower({v}) IN ('true', 'false'))",
                  f"bool_and(regexp_full_match({v}, {ISO_SQL}))"]
    row = con.execute(f"SELECT {', '.join(parts)} FROM cells").fetchone()
    for index, c in enumerate(columns):
        present, whole, numeric, boolean, date = row[5 * index:5 * index + 5]
        c.csv_type = "String"
        if present:
            c.csv_type = ("Integer" if whole else "Double" if numeric else
                          "Boolean" if boolean else "Date" if date else "String")
        c.esri = {"Integer": "esriFieldTypeInteger", "Double": "esriFieldTypeDouble",
                  "Boolean": "esriFieldTypeSmallInteger", "Date": "esriFieldTypeDate",
                  "String": "esriFieldTypeString"}[c.csv_type]
        c.boolean = c.csv_type == "Boolean"


def find_column(by_name: Mapping[str, ColumnT], wanted: str | None, guesses: tuple[str, ...],
                role: str) -> ColumnT | None:
    """The column the options name (an error if missing), else the first guessed name found."""
    if wanted:
        column = by_name.get(wanted.lower())
        if column is None:
            raise SourceFormatError(f"The CSV has no {role} column {wanted!r}.")
        return column
    return next((by_name[g] for g in guesses if g in by_name), None)


def _geometry(by_name: dict[str, Column], options: Mapping[str, Any]) -> str:
    """The SQL of each row's geometry: WKT, else a point from latitude and longitude."""
    wkt = find_column(by_name, options.get("wkt"), WKT_NAMES if not (
        options.get("latitude") or options.get("longitude")) else (), "wkt")
    if wkt is not None:
        return f"TRY(ST_GeomFromText({wkt.sql}))"
    lat = find_column(by_name, options.get("latitude"), LATITUDE_NAMES, "latitude")
    lon = find_column(by_name, options.get("longitude"), LONGITUDE_NAMES, "longitude")
    if lat is None or lon is None:
        raise SourceFormatError(
            "The CSV has no latitude/longitude or WKT column; name them in the options.")
    if lat.csv_type not in ("Double", "Integer") or lon.csv_type not in ("Double", "Integer"):
        raise SourceFormatError(
            f"The CSV columns {lat.source!r}/{lon.source!r} are not all numbers.")
    y, x = f"CAST({lat.sql} AS DOUBLE)", f"CAST({lon.sql} AS DOUBLE)"
    return (f"CASE WHEN {y} BETWEEN -90 AND 90 AND {x} BETWEEN -180 AND 180 "
            f"THEN ST_Point({x}, {y}) END")
