"""outStatistics, groupByFieldsForStatistics (havingClause is compiled by where.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson

from koop_app.conf import koop_settings
from koop_app.errors import InvalidParameterError

TYPES = ("count", "sum", "min", "max", "avg", "stddev", "var", "percentile_cont",
         "percentile_disc")
OUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True)
class Statistic:
    kind: str
    field: str  # the layer's field name, or "*" for count(*)
    out_name: str
    percentile: float | None = None
    descending: bool = False


def parse_statistics(raw: Mapping[str, str], resolve: Callable[[str], str | None]
                     ) -> tuple[Statistic, ...]:
    text = (raw.get("outStatistics") or "").strip()
    if not text:
        return ()
    try:
        items = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise InvalidParameterError("outStatistics", "not valid JSON") from None
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not items:
        raise InvalidParameterError("outStatistics", "expected a list of statistics")
    limit = int(koop_settings.MAX_STATISTICS)
    if len(items) > limit:
        raise InvalidParameterError("outStatistics",
                                    f"{len(items)} statistics; at most {limit} are allowed")
    out: list[Statistic] = []
    for item in items:
        if not isinstance(item, dict):
            raise InvalidParameterError("outStatistics", "each statistic must be an object")
        kind = str(item.get("statisticType") or "").lower()
        if kind not in TYPES:
            raise InvalidParameterError("outStatistics",
                                        f"statisticType {item.get('statisticType')!r} is not "
                                        f"one of {', '.join(TYPES)}")
        requested = str(item.get("onStatisticField") or "").strip()
        if requested in ("*", "1") and kind == "count":
            field = "*"
        else:
            field = resolve(requested) if requested else None
            if field is None:
                raise InvalidParameterError("outStatistics",
                                            f"onStatisticField {requested!r} is not a field")
        out_name = str(item.get("outStatisticFieldName") or f"{kind}_{field}".replace("*", "all"))
        if not OUT_NAME.match(out_name):
            raise InvalidParameterError("outStatistics",
                                        f"outStatisticFieldName {out_name!r} is not a name")
        percentile, descending = None, False
        if kind.startswith("percentile"):
            parameters = item.get("statisticParameters") or {}
            value = parameters.get("value") if isinstance(parameters, dict) else None
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    0 <= value <= 1):
                raise InvalidParameterError("outStatistics",
                                            "percentile statistics need statisticParameters "
                                            '{"value": 0..1}')
            percentile = float(value)
            descending = str(parameters.get("orderBy", "ASC")).upper() == "DESC"
        out.append(Statistic(kind, field, out_name, percentile, descending))
    names = [s.out_name.lower() for s in out]
    if len(set(names)) != len(names):
        raise InvalidParameterError("outStatistics", "outStatisticFieldName values repeat")
    return tuple(out)


def parse_group_by(raw: Mapping[str, str], resolve: Callable[[str], str | None]
                   ) -> tuple[str, ...]:
    names = []
    parts = (raw.get("groupByFieldsForStatistics") or "").split(",")
    limit = int(koop_settings.MAX_GROUP_BY_FIELDS)
    if len(parts) > limit and sum(1 for part in parts if part.strip()) > limit:
        raise InvalidParameterError("groupByFieldsForStatistics",
                                    f"at most {limit} fields are allowed")
    for part in parts:
        if not part.strip():
            continue
        name = resolve(part.strip())
        if name is None:
            raise InvalidParameterError("groupByFieldsForStatistics",
                                        f"{part.strip()!r} is not a field")
        names.append(name)
    return tuple(dict.fromkeys(names))
