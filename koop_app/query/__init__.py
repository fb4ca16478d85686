"""The query engine (Koop's "winnow"): GeoServices parameters -> Query -> Result."""

from __future__ import annotations

from koop_app.query.engine import Page, RecordLimits, Result, execute, run, without_applied
from koop_app.query.params import parse_common, parse_query
from koop_app.query.query import Query

__all__ = ["Page", "Query", "RecordLimits", "Result", "execute", "parse_common", "parse_query",
           "run", "without_applied"]
