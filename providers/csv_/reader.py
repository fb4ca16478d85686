"""CSV text -> typed columns: encoding and delimiter sniffing, per-column type inference."""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass

from koop_app.data.csvstream import sniff_delimiter
from koop_app.data.values import ISO_DATE

_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_BOOL = {"true": True, "false": False}
INT32 = 2**31 - 1


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # Integer, Double, Boolean, Date, String
    values: list


def decode(raw: bytes, encoding: str | None) -> str:
    """Text of ``raw``: the given encoding, else a BOM's, else UTF-8, else Windows-1252."""
    if encoding:
        return raw.decode(encoding)
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                      (codecs.BOM_UTF16_BE, "utf-16")):
        if raw.startswith(bom):
            return raw.decode(name)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def read_columns(text: str, delimiter: str | None) -> list[Column]:
    """Parse the CSV and type each column from all its values (empty cells are null)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter or sniff_delimiter(text))
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError("the CSV is empty") from None
    header = [name.strip() or f"field_{i + 1}" for i, name in enumerate(header)]
    if len(set(h.lower() for h in header)) != len(header):
        raise ValueError("the CSV header repeats a column name")
    cells: list[list[str | None]] = [[] for _ in header]
    width = len(header)
    for line_no, row in enumerate(reader, start=2):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) > width:
            raise ValueError(f"line {line_no} has {len(row)} cells for {width} columns")
        row += [""] * (width - len(row))
        for index, cell in enumerate(row):
            cells[index].append(cell.strip() or None)
    return [_typed(name, values) for name, values in zip(header, cells, strict=True)]


def _typed(name: str, values: list[str | None]) -> Column:
    present = [v for v in values if v is not None]
    if present and all(_INT.match(v) for v in present) and all(
        abs(int(v)) <= INT32 for v in present
    ):
        return Column(name, "Integer", [None if v is None else int(v) for v in values])
    if present and all(_INT.match(v) or _FLOAT.match(v) for v in present):
        return Column(name, "Double", [None if v is None else float(v) for v in values])
    if present and all(v.lower() in _BOOL for v in present):
        return Column(name, "Boolean", [None if v is None else _BOOL[v.lower()] for v in values])
    if present and all(ISO_DATE.match(v) for v in present):
        return Column(name, "Date", values)
    return Column(name, "String", values)
