"""Pass-through provider for a paged JSON records API, pushing filters down to it.

The API it speaks (a common shape for REST record services)::

    GET <url>?offset=0&limit=500[&bbox=xmin,ymin,xmax,ymax][&<field>=<value>...]
    -> {"records": [{"id": 1, "lat": 40.1, "lon": -105.2, ...}], "total": 1234}

What it pushes to the source, and reports in ``filtersApplied`` so the engine skips it:
``where`` made only of ``field = literal`` joined by AND; an envelope ``geometry`` in WGS 84
with Intersects/EnvelopeIntersects; ``resultOffset``/``resultRecordCount``; and the ``count``
for ``returnCountOnly``. Anything else is fetched unfiltered (page by page) and filtered by the
engine, so answers are right either way.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import orjson
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from koop_app.errors import SourceFormatError
from koop_app.net import check_url
from koop_app.options import Option
from koop_app.provider import Provider, ProviderRequest
from koop_app.sources import is_url, read_source


def _check_url(value: str) -> str:
    if not is_url(value):
        raise ValueError("must be an http(s) URL")
    return check_url(value)


def _check_page_size(value: int) -> int:
    if not 1 <= value <= 5000:
        raise ValueError("must be between 1 and 5000")
    return value


def equalities(where: str) -> dict[str, str] | None:
    """``a = 'x' AND b = 2`` as {"a": "x", "b": "2"}; None when the clause is anything else."""
    text = where.strip()
    if not text or text.replace(" ", "") == "1=1":
        return {}
    try:
        tree = sqlglot.parse_one(text, into=exp.Condition)
    except (ParseError, TokenError):
        return None
    found: dict[str, str] = {}
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, exp.Paren):
            pending.append(node.this)
        elif isinstance(node, exp.And):
            pending.extend([node.this, node.expression])
        elif (isinstance(node, exp.EQ) and isinstance(node.this, exp.Column)
              and isinstance(node.expression, exp.Literal) and not node.this.table):
            found[node.this.name] = node.expression.this
        else:
            return None
    return found


def envelope(query: dict[str, str]) -> str | None:
    """The query's geometry as ``xmin,ymin,xmax,ymax`` when it is a WGS 84 envelope."""
    text = (query.get("geometry") or "").strip()
    relation = (query.get("spatialRel") or "esriSpatialRelIntersects").lower()
    in_sr = (query.get("inSR") or "4326").strip()
    if not text or in_sr not in ("4326", '{"wkid":4326}', '{"wkid": 4326}') or relation not in (
            "esrispatialrelintersects", "esrispatialrelenvelopeintersects"):
        return None
    try:
        if text.startswith("{"):
            data = orjson.loads(text)
            if (data.get("spatialReference") or {}).get("wkid", 4326) != 4326:
                return None
            values = [float(data[k]) for k in ("xmin", "ymin", "xmax", "ymax")]
        else:
            values = [float(v) for v in text.split(",")]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        return None  # not pushed: the engine checks the geometry and answers a 400
    return ",".join(repr(v) for v in values)


def _whole(text: str | None) -> int | None:
    """A paging value to push to the API: ASCII digits only, else None (the engine checks it)."""
    text = (text or "").strip() or "0"
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 15 else None


class RecordsProvider(Provider):
    """``/records/rest/services/<id>/FeatureServer``: a paged records API, asked per request."""

    name = "records"
    title = "Records API, passed through (developer example)"
    description = ("A developer example of a pass-through provider: a paged JSON records API "
                   "asked on every request, with simple filters sent to it. Not for "
                   "production data.")
    version = "1.0.0"
    cache_policy = "pass-through"
    options_schema = (
        Option("url", str, required=True, check=_check_url, label="Records URL",
               help="The API's records URL, e.g. https://api.example.com/records"),
        Option("latitude", str, default="lat", label="Latitude field",
               help="latitude field of a record"),
        Option("longitude", str, default="lon", label="Longitude field",
               help="longitude field of a record"),
        Option("page_size", int, default=500, check=_check_page_size, label="Page size",
               help="records per request (at most 5000)"),
        Option("max_pages", int, default=200, label="Most pages per answer",
               help="pages read for one unpaged answer"),
    )

    def get_data(self, request: ProviderRequest) -> dict[str, Any]:
        options, query = request.options, request.query
        params: dict[str, str] = {}
        applied: dict[str, bool] = {}
        pushed = equalities(query.get("where") or "")
        if pushed is not None:
            params.update(pushed)
            applied["where"] = True
        bbox = envelope(query)
        if bbox is not None:
            params["bbox"] = bbox
            applied["geometry"] = True
        simple = applied.get("where") and (bbox is not None or not query.get("geometry")) \
            and not query.get("objectIds") and not query.get("time")
        if simple and (query.get("returnCountOnly") or "").lower() == "true" and \
                (query.get("returnExtentOnly") or "").lower() != "true":
            total = self._page(options, {**params, "offset": "0", "limit": "0"})["total"]
            return {"type": "FeatureCollection", "features": [], "count": int(total),
                    "filtersApplied": applied, "metadata": {"idField": "id"}}
        offset, limit = query.get("resultOffset"), query.get("resultRecordCount")
        start, count = _whole(offset), _whole(limit)
        if (simple and not query.get("orderByFields") and (offset or limit)
                and start is not None and count is not None):
            size = min(count or options["page_size"], options["page_size"])
            page = self._page(options, {**params, "offset": str(start), "limit": str(size)})
            records = page["records"]
            applied.update(offset=True, limit=True)
            exceeded = int(page["total"]) > start + len(records)
        else:
            records, exceeded = self._all(options, params), False
        features = [self._feature(record, options) for record in records]
        return {"type": "FeatureCollection", "features": features, "filtersApplied": applied,
                "metadata": {"idField": "id", "limitExceeded": exceeded}}

    def _all(self, options: dict[str, Any], params: dict[str, str]) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for number in range(int(options["max_pages"])):
            page = self._page(options, {**params, "offset": str(number * options["page_size"]),
                                        "limit": str(options["page_size"])})
            records.extend(page["records"])
            if len(records) >= int(page["total"]) or not page["records"]:
                break
        return records

    def _page(self, options: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        parts = urlsplit(options["url"])
        query = "&".join(filter(None, [parts.query, urlencode(params)]))
        raw = read_source(urlunsplit(parts._replace(query=query)))
        try:
            page = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise SourceFormatError("The records API did not answer JSON.") from exc
        if not isinstance(page, dict) or not isinstance(page.get("records"), list) or \
                not isinstance(page.get("total"), int):
            raise SourceFormatError("The records API answered without records and total.")
        return page

    @staticmethod
    def _feature(record: Any, options: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(record, dict):
            raise SourceFormatError("A record of the API is not an object.")
        lat, lon = record.get(options["latitude"]), record.get(options["longitude"])
        geometry = None
        if isinstance(lat, (int, float)) and isinstance(lon, (int, float)):
            geometry = {"type": "Point", "coordinates": [float(lon), float(lat)]}
        return {"type": "Feature", "properties": record, "geometry": geometry}
