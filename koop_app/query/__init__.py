"""The query engine (Koop's "winnow"): GeoServices parameters -> Query -> Result."""

from __future__ import annotations

from koop_app.query.engine import Page, Result, execute, run
from koop_app.query.params import parse_query
from koop_app.query.query import Query

__all__ = ["Page", "Query", "Result", "execute", "parse_query", "run"]
