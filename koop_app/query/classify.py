"""Classification for generateRenderer: class breaks and unique values, computed in DuckDB.

Natural breaks (Jenks) run on at most ``SAMPLE`` evenly spaced quantiles of the field, so the
cost does not grow with the layer; the other methods use exact aggregates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from koop_app.data.duck import quote_ident
from koop_app.data.hot import LayerTable
from koop_app.data.schema import DATE, DOUBLE, INTEGER, OID, SMALL_INTEGER
from koop_app.errors import InvalidParameterError
from koop_app.query.engine import execute
from koop_app.query.where import WhereClause

SAMPLE = 1000
MAX_CLASSES = 32
MAX_UNIQUE_VALUES = 1000
NUMERIC = (INTEGER, SMALL_INTEGER, DOUBLE, OID, DATE)
METHODS = {
    "esriclassifynaturalbreaks": "esriClassifyNaturalBreaks",
    "esriclassifyequalinterval": "esriClassifyEqualInterval",
    "esriclassifyquantile": "esriClassifyQuantile",
    "esriclassifystandarddeviation": "esriClassifyStandardDeviation",
}


@dataclass(frozen=True)
class ClassBreaks:
    field: str
    method: str
    min_value: float
    breaks: list[float]  # the upper bound of each class


@dataclass(frozen=True)
class UniqueValues:
    fields: tuple[str, ...]
    delimiter: str
    values: list[tuple[str, int]]  # (joined value, count), most frequent first


def parse_definition(raw: Mapping[str, str]) -> dict[str, Any]:
    text = (raw.get("classificationDef") or "").strip()
    if not text:
        raise InvalidParameterError("classificationDef", "is required")
    try:
        definition = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise InvalidParameterError("classificationDef", "not valid JSON") from None
    if not isinstance(definition, dict) or definition.get("type") not in ("classBreaksDef",
                                                                          "uniqueValueDef"):
        raise InvalidParameterError("classificationDef",
                                    "type must be classBreaksDef or uniqueValueDef")
    return definition


def _where(where: WhereClause | None) -> tuple[str, tuple[Any, ...]]:
    return (f" WHERE {where.sql}", where.params) if where is not None else ("", ())


def class_breaks(definition: Mapping[str, Any], table: LayerTable,
                 where: WhereClause | None) -> ClassBreaks:
    name = str(definition.get("classificationField") or "")
    found = table.schema.field(name)
    if found is None or found.type not in NUMERIC:
        raise InvalidParameterError("classificationDef",
                                    f"classificationField {name!r} is not a numeric field")
    method_name = str(definition.get("classificationMethod") or "esriClassifyNaturalBreaks")
    method = METHODS.get(method_name.lower())
    if method is None:
        raise InvalidParameterError("classificationDef",
                                    f"classificationMethod {method_name!r} is not supported")
    count = definition.get("breakCount", 5)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_CLASSES:
        raise InvalidParameterError("classificationDef",
                                    f"breakCount must be between 1 and {MAX_CLASSES}")
    column = quote_ident(found.name)
    where_sql, params = _where(where)
    low, high, mean, sd, n = execute(
        f"SELECT min({column}), max({column}), avg({column}), stddev_samp({column}), "
        f"count({column}) FROM {table.table_name}{where_sql}", params).fetchone()
    if not n:
        return ClassBreaks(found.name, method, 0.0, [])
    low, high = float(low), float(high)
    if method == "esriClassifyEqualInterval" or high == low:
        step = (high - low) / count
        breaks = [low + step * (i + 1) for i in range(count)]
    elif method == "esriClassifyQuantile":
        fractions = [(i + 1) / count for i in range(count)]
        (values,) = execute(f"SELECT quantile_disc({column}, ?::DOUBLE[]) FROM "
                            f"{table.table_name}{where_sql}", (fractions, *params)).fetchone()
        breaks = [float(v) for v in values]
    elif method == "esriClassifyStandardDeviation":
        interval = float(definition.get("standardDeviationInterval", 1) or 1)
        step = (float(sd or 0) or (high - low)) * interval
        breaks = _deviation_breaks(low, high, float(mean), step)
    else:
        fractions = list(np.linspace(0, 1, min(SAMPLE, int(n))))
        (values,) = execute(f"SELECT quantile_disc({column}, ?::DOUBLE[]) FROM "
                            f"{table.table_name}{where_sql}", (fractions, *params)).fetchone()
        breaks = jenks(np.asarray(values, dtype=float), count)
    breaks[-1] = high  # the last class always ends at the maximum
    return ClassBreaks(found.name, method, low, _distinct_sorted(breaks))


def _distinct_sorted(values: list[float]) -> list[float]:
    out: list[float] = []
    for value in sorted(values):
        if not out or value > out[-1]:
            out.append(value)
    return out


def _deviation_breaks(low: float, high: float, mean: float, step: float) -> list[float]:
    """Class edges at the mean +/- whole steps, clipped to the data."""
    if step <= 0:
        return [high]
    edges = [mean + step * k for k in range(-MAX_CLASSES, MAX_CLASSES + 1)]
    inside = [e for e in edges if low < e < high]
    return inside[: MAX_CLASSES - 1] + [high]


def jenks(values: np.ndarray, classes: int) -> list[float]:
    """Jenks natural breaks on sorted ``values``: the class upper bounds (dynamic programming)."""
    values = np.sort(values)
    n = len(values)
    classes = min(classes, n)
    prefix = np.concatenate([[0.0], np.cumsum(values)])
    prefix2 = np.concatenate([[0.0], np.cumsum(values * values)])

    def ssd(start: np.ndarray, end: int) -> np.ndarray:
        """Within-class squared deviation of values[start:end] for every start at once."""
        count = end - start
        total = prefix[end] - prefix[start]
        return (prefix2[end] - prefix2[start]) - total * total / count

    cost = np.full((classes + 1, n + 1), np.inf)
    split = np.zeros((classes + 1, n + 1), dtype=int)
    cost[0, 0] = 0.0
    for k in range(1, classes + 1):
        for end in range(k, n + 1):
            starts = np.arange(k - 1, end)
            totals = cost[k - 1, starts] + ssd(starts, end)
            best = int(np.argmin(totals))
            cost[k, end], split[k, end] = totals[best], starts[best]
    bounds = []
    end = n
    for k in range(classes, 0, -1):
        bounds.append(float(values[end - 1]))
        end = split[k, end]
    return sorted(bounds)


def unique_values(definition: Mapping[str, Any], table: LayerTable,
                  where: WhereClause | None) -> UniqueValues:
    requested = definition.get("uniqueValueFields") or []
    if not isinstance(requested, list) or not 1 <= len(requested) <= 3:
        raise InvalidParameterError("classificationDef", "uniqueValueFields takes 1 to 3 fields")
    fields = []
    for name in requested:
        found = table.schema.field(str(name))
        if found is None:
            raise InvalidParameterError("classificationDef", f"{name!r} is not a field")
        fields.append(found.name)
    delimiter = str(definition.get("fieldDelimiter") or ",")
    where_sql, params = _where(where)
    joined = " || ? || ".join(f"coalesce(CAST({quote_ident(f)} AS VARCHAR), '<Null>')"
                              for f in fields)
    rows = execute(
        f"SELECT {joined} AS v, count(*) AS n FROM {table.table_name}{where_sql} "
        f"GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {MAX_UNIQUE_VALUES}",
        tuple([delimiter] * (len(fields) - 1)) + tuple(params)).fetchall()
    return UniqueValues(tuple(fields), delimiter, [(str(v), int(n)) for v, n in rows])
