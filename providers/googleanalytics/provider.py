"""A Google Analytics 4 report by country, region or city, served as features.

One dataset is one report of the GA4 Data API: ``POST {api}/properties/{id}:runReport`` with
the geography's dimensions (``countryId``, ``country``, then ``region``, then ``city`` and
``cityId``), the chosen metrics, a date range and an optional dimension filter, read page by
page (``limit``/``offset``) until ``rowCount``. Each row becomes a feature: its dimensions and
metric values as attributes, its place's geometry from the data packages of ``places``.
Reports are not real time, so the provider is cached (six hours unless the dataset or the
provider row sets a TTL).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from koop_app import net
from koop_app.connections import UnknownConnectionError, connection, connections
from koop_app.errors import (
    OptionsError,
    ProviderError,
    SourceAuthError,
    SourceError,
    SourceFormatError,
    SourceNotFoundError,
    SourceRateLimitedError,
)
from koop_app.options import Option
from koop_app.provider import Provider, ProviderRequest

from . import places
from .auth import CredentialsError, ServiceAccount, parse_service_account, tokens

logger = logging.getLogger(__name__)

API_URL = "https://analyticsdata.googleapis.com/v1beta"
DEFAULT_TTL = 6 * 3600
# The dimensions asked for each geography level: the country code on every level, as the
# key that makes a region or a city name unambiguous across countries.
LEVELS: dict[str, tuple[str, ...]] = {
    "country": ("countryId", "country"),
    "region": ("countryId", "country", "region"),
    "city": ("countryId", "country", "region", "city", "cityId"),
}
GEOMETRY_TYPES = {"country": "esriGeometryPolygon", "region": "esriGeometryPoint",
                  "city": "esriGeometryPoint"}
# GA4's limits: 10 metrics a request, 250,000 rows a page.
MAX_METRICS = 10
MAX_PAGE_SIZE = 250_000
METRIC_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(:[A-Za-z0-9_]+)?$")
DATE = re.compile(r"^(\d{4}-\d{2}-\d{2}|today|yesterday|\d{1,4}daysAgo)$")
FILTER_KINDS = {"andGroup", "orGroup", "notExpression", "filter"}
# Statuses of Google's answers that are read here (the others are koop_app.net's errors).
READ_STATUSES = {400, 401, 403, 404, 429, 500, 503}


def _check_property(value: str) -> str:
    text = value.strip().removeprefix("properties/")
    if not text.isascii() or not text.isdigit():
        raise ValueError("must be the numeric GA4 property id, e.g. 123456789")
    return text


def _check_credentials(value: str) -> str:
    try:
        parse_service_account(value)
    except CredentialsError as exc:
        raise ValueError(f"the service account key {exc}") from None
    return value


def _check_connection(value: str) -> str:
    if value not in connections(GoogleAnalyticsProvider.name):
        configured = ", ".join(sorted(connections(GoogleAnalyticsProvider.name))) or "none"
        raise ValueError(f"no such connection in KOOP['CONNECTIONS']['googleanalytics'] "
                         f"(configured: {configured})")
    return value


def _check_metrics(value: list[str]) -> list[str]:
    if not value:
        raise ValueError("name at least one metric, e.g. activeUsers")
    if len(value) > MAX_METRICS:
        raise ValueError(f"at most {MAX_METRICS} metrics (a GA4 limit)")
    for name in value:
        if not METRIC_NAME.match(name):
            raise ValueError(f"{name!r} is not a metric's API name (e.g. activeUsers, sessions)")
    if len(set(value)) != len(value):
        raise ValueError("names a metric twice")
    return value


def _check_date(value: str) -> str:
    value = value.strip()
    if not DATE.match(value):
        raise ValueError("must be YYYY-MM-DD, today, yesterday or NdaysAgo (e.g. 30daysAgo)")
    return value


def _check_filter(value: str) -> str:
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise ValueError("must be a GA4 FilterExpression in JSON, e.g. {\"filter\": "
                         "{\"fieldName\": \"deviceCategory\", \"stringFilter\": "
                         "{\"value\": \"mobile\"}}}") from None
    if not isinstance(data, dict) or len(data) != 1 or not FILTER_KINDS & data.keys():
        raise ValueError("must be a GA4 FilterExpression: an object with one of andGroup, "
                         "orGroup, notExpression or filter")
    return value


def _check_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")
    return net.check_url(value.rstrip("/"))


def _check_range(low: int, high: int):
    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value
    return check


class GoogleAnalyticsProvider(Provider):
    """``/googleanalytics/rest/services/<id>/FeatureServer``: a GA4 report on a map."""

    name = "googleanalytics"
    title = "Google Analytics 4 report"
    description = ("A GA4 property's report (users, sessions, views...) by country, region or "
                   "city, read with a service account and cached; countries as outlines, "
                   "regions and cities as points.")
    version = "1.0.0"
    cache_policy = "cached"
    options_schema = (
        Option("property", str, required=True, check=_check_property, label="GA4 property id",
               help="The numeric id of the GA4 property (Admin > Property details), "
                    "e.g. 123456789."),
        Option("credentials", str, kind="secret", check=_check_credentials,
               label="Service account key (JSON)",
               help="The service account's key file, pasted whole. Add the account's e-mail "
                    "to the property as a Viewer. Leave empty when a connection is named."),
        Option("connection", str, check=_check_connection, label="Connection",
               help="Instead of a key here: the name of an entry of KOOP['CONNECTIONS']"
                    "['googleanalytics'] that holds the key (credentials or "
                    "credentials_file), configured by the operator."),
        Option("geography", str, default="country", choices=tuple(LEVELS),
               label="Geography", help="country (outlines), region or city (points)"),
        Option("metrics", list, default=["activeUsers"], check=_check_metrics,
               label="Metrics", help="Comma-separated API names, e.g. activeUsers, sessions, "
                                     "screenPageViews (at most 10)."),
        Option("start_date", str, default="30daysAgo", check=_check_date, label="From",
               help="YYYY-MM-DD, today, yesterday or NdaysAgo"),
        Option("end_date", str, default="yesterday", check=_check_date, label="To",
               help="YYYY-MM-DD, today, yesterday or NdaysAgo"),
        Option("dimension_filter", str, check=_check_filter, label="Dimension filter",
               help="Optional GA4 FilterExpression (JSON), e.g. {\"filter\": {\"fieldName\": "
                    "\"deviceCategory\", \"stringFilter\": {\"value\": \"mobile\"}}}"),
        Option("api_url", str, check=_check_url, label="Data API URL",
               help=f"Default {API_URL}"),
        Option("token_url", str, check=_check_url, label="Token URL",
               help="Default: the key file's token_uri (https://oauth2.googleapis.com/token)"),
        Option("page_size", int, default=10_000, check=_check_range(1, MAX_PAGE_SIZE),
               label="Rows per request", help="runReport's limit (at most 250,000)"),
        Option("max_rows", int, default=100_000, check=_check_range(1, 1_000_000),
               label="Most rows", help="Rows read for one report; the rest are left out"),
    )

    def clean_options(self, options: Mapping[str, Any] | None) -> dict[str, Any]:
        cleaned = super().clean_options(options)
        if bool(cleaned["credentials"]) == bool(cleaned["connection"]):
            raise OptionsError({"credentials": "give either the service account key or a "
                                               "connection (one of them)"}, type(self).__name__)
        return cleaned

    # -- the report -----------------------------------------------------------------------

    def get_data(self, request: ProviderRequest) -> dict[str, Any]:
        options = request.options
        account, api_url, token_url = self.get_credentials(options)
        level = options["geography"]
        dimensions, metrics = LEVELS[level], list(options["metrics"])
        rows, types, total = self.read_report(account, api_url, token_url, options)
        features, unmatched = self.features(level, dimensions, metrics, types, rows)
        metadata = self.metadata(options, level, metrics, types, len(rows), total, unmatched)
        answer: dict[str, Any] = {"type": "FeatureCollection", "features": features,
                                  "metadata": metadata}
        dataset = request.dataset
        if dataset is None or (dataset.ttl is None and dataset.provider.default_ttl is None):
            answer["ttl"] = DEFAULT_TTL
        return answer

    def get_credentials(self, options: Mapping[str, Any]) -> tuple[ServiceAccount, str, str]:
        """The service account, the Data API URL and the token URL of a dataset."""
        settings: Mapping[str, Any] = {}
        if options.get("connection"):
            try:
                settings = connection(self.name, options["connection"])
            except UnknownConnectionError:
                raise ProviderError("The dataset names a Google Analytics connection that is "
                                    "not configured.", log_message=(
                                        f"KOOP['CONNECTIONS']['googleanalytics'] has no "
                                        f"{options['connection']!r}")) from None
            raw = settings.get("credentials")
            if raw is None and settings.get("credentials_file"):
                raw = self._read_key_file(str(settings["credentials_file"]))
        else:
            raw = options.get("credentials")
        try:
            account = parse_service_account(raw if raw is not None else "")
        except CredentialsError as exc:
            raise SourceAuthError(f"The service account key {exc}.") from None
        api_url = (options.get("api_url") or settings.get("api_url") or API_URL).rstrip("/")
        token_url = options.get("token_url") or settings.get("token_url") or account.token_uri
        return account, api_url, token_url

    @staticmethod
    def _read_key_file(path: str) -> bytes:
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise SourceAuthError("The service account key file of the connection cannot be "
                                  "read.", log_message=f"{path}: {exc.strerror}") from None

    def read_report(self, account: ServiceAccount, api_url: str, token_url: str,
                    options: Mapping[str, Any]
                    ) -> tuple[list[dict[str, Any]], dict[str, str], int]:
        """All rows of the report (at most ``max_rows``), the metric types and the row count."""
        dimensions = LEVELS[options["geography"]]
        body: dict[str, Any] = {
            "dateRanges": [{"startDate": options["start_date"], "endDate": options["end_date"]}],
            "dimensions": [{"name": name} for name in dimensions],
            "metrics": [{"name": name} for name in options["metrics"]],
            # A fixed order keeps pages from overlapping or skipping rows between requests.
            "orderBys": [{"dimension": {"dimensionName": name}} for name in dimensions],
        }
        if options.get("dimension_filter"):
            body["dimensionFilter"] = orjson.loads(options["dimension_filter"])
        url = f"{api_url}/properties/{options['property']}:runReport"
        page_size, most = int(options["page_size"]), int(options["max_rows"])
        rows: list[dict[str, Any]] = []
        types: dict[str, str] = {}
        total = 0
        while len(rows) < most:
            size = min(page_size, most - len(rows))
            page = self._run_report(account, url, token_url,
                                    {**body, "offset": len(rows), "limit": size}, options)
            types = self._check_headers(page, dimensions, options["metrics"])
            got = page.get("rows") or []
            if not isinstance(got, list):
                raise SourceFormatError("Google Analytics answered rows that are not a list.")
            total = _count(page.get("rowCount"), len(rows) + len(got))
            rows.extend(got)
            if not got or len(rows) >= total:
                break
        if total > len(rows):
            logger.warning("googleanalytics: property %s has %d rows; read the first %d "
                           "(max_rows)", options["property"], total, len(rows))
        return rows, types, total

    def _run_report(self, account: ServiceAccount, url: str, token_url: str,
                    body: dict[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
        """One runReport call; a token Google no longer takes is renewed once."""
        for attempt in (1, 2):
            token = tokens.token(account, token_url)
            answer = net.request("POST", url, body=orjson.dumps(body), accept=READ_STATUSES,
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json",
                                          "Accept": "application/json"})
            if answer.status == 401 and attempt == 1:
                tokens.forget(account, token_url)
                continue
            if answer.status != 200:
                raise _api_error(answer.status, answer.body, account, options["property"],
                                 answer.headers.get("retry-after", ""))
            try:
                page = orjson.loads(answer.body)
            except orjson.JSONDecodeError:
                raise SourceFormatError("Google Analytics did not answer JSON.") from None
            if not isinstance(page, dict):
                raise SourceFormatError("Google Analytics answered something other than a "
                                        "report.")
            return page
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _check_headers(page: dict[str, Any], dimensions: tuple[str, ...],
                       metrics: list[str]) -> dict[str, str]:
        """The metric types of a page, after checking its headers match the request."""
        dims = [h.get("name") for h in page.get("dimensionHeaders") or [] if isinstance(h, dict)]
        heads = [h for h in page.get("metricHeaders") or [] if isinstance(h, dict)]
        if dims != list(dimensions) or [h.get("name") for h in heads] != list(metrics):
            raise SourceFormatError("Google Analytics answered other columns than were asked.",
                                    log_message=f"runReport headers {dims} / "
                                                f"{[h.get('name') for h in heads]}")
        return {str(h["name"]): str(h.get("type") or "TYPE_FLOAT") for h in heads}

    # -- rows to features -----------------------------------------------------------------

    def features(self, level: str, dimensions: tuple[str, ...], metrics: list[str],
                 types: dict[str, str], rows: list[dict[str, Any]]
                 ) -> tuple[list[dict[str, Any]], Counter[str]]:
        countries = places.countries()
        gazetteer: places.Places | None = None
        if level == "region":
            gazetteer = places.regions()  # the centres only: cities take more memory
        elif level == "city":
            gazetteer = places.places()
        names = {metric: field_name(metric) for metric in metrics}
        features: list[dict[str, Any]] = []
        unmatched: Counter[str] = Counter()
        for row in rows:
            values = _values(row, "dimensionValues", len(dimensions))
            numbers = _values(row, "metricValues", len(metrics))
            attributes: dict[str, Any] = dict(zip(dimensions, values, strict=True))
            for metric, value in zip(metrics, numbers, strict=True):
                attributes[names[metric]] = _number(value, types.get(metric, ""))
            code = countries.code(attributes["countryId"], attributes["country"])
            if level == "country":
                match = countries.match(attributes["countryId"], attributes["country"])
            elif level == "region":
                match = gazetteer.region(code, attributes["region"])  # type: ignore[union-attr]
            else:
                match = gazetteer.city(code, attributes["region"],  # type: ignore[union-attr]
                                       attributes["city"])
            if match.geometry is None:
                unmatched[match.reason] += 1
            features.append({"type": "Feature", "id": "|".join(values),
                             "properties": attributes, "geometry": match.geometry})
        if unmatched:
            logger.info("googleanalytics: %d of %d %s rows have no geometry (%s)",
                        sum(unmatched.values()), len(rows), level,
                        ", ".join(f"{n} {why}" for why, n in sorted(unmatched.items())))
        return features, unmatched

    def metadata(self, options: Mapping[str, Any], level: str, metrics: list[str],
                 types: dict[str, str], count: int, total: int,
                 unmatched: Counter[str]) -> dict[str, Any]:
        fields = [{"name": name, "type": "String", "alias": name} for name in LEVELS[level]]
        fields += [{"name": field_name(m), "alias": m,
                    "type": "Integer" if types.get(m) == "TYPE_INTEGER" else "Double"}
                   for m in metrics]
        text = (f"Google Analytics property {options['property']}: {', '.join(metrics)} by "
                f"{level}, {options['start_date']} to {options['end_date']}.")
        missing = sum(unmatched.values())
        if missing:
            why = ", ".join(f"{n} {reason}" for reason, n in sorted(unmatched.items()))
            text += f" {missing} of {count} rows have no geometry ({why})."
        if total > count:
            text += f" The report has {total} rows; the first {count} are served."
        return {"name": f"Google Analytics by {level}", "description": text,
                "geometryType": GEOMETRY_TYPES[level], "displayField": level, "fields": fields,
                "copyrightText": "Google Analytics; outlines: Natural Earth; places: "
                                 "GeoNames (CC BY 4.0)",
                "unmatched": dict(unmatched), "rowCount": total}


def field_name(metric: str) -> str:
    """A metric's attribute name: custom ones (``customEvent:price``) lose their colon."""
    return re.sub(r"\W", "_", metric)


def _count(value: Any, fallback: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return fallback  # no rowCount (an empty report): what came is all there is


def _values(row: Any, key: str, size: int) -> list[str]:
    items = row.get(key) if isinstance(row, dict) else None
    if not isinstance(items, list) or len(items) != size:
        raise SourceFormatError("Google Analytics answered a row of another shape than asked.")
    return [str(item.get("value", "")) if isinstance(item, dict) else "" for item in items]


def _number(value: str, kind: str) -> int | float | None:
    try:
        return int(value) if kind == "TYPE_INTEGER" else float(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return None


def _api_error(status: int, body: bytes, account: ServiceAccount, property_id: str,
               retry_after: str) -> ProviderError:
    """A Data API error (``{"error": {"code", "message", "status"}}``) as one of ours."""
    try:
        error = orjson.loads(body).get("error") or {}
    except (orjson.JSONDecodeError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    state = _short(error.get("status")) or f"HTTP {status}"
    said = _short(error.get("message"), 300)
    where = f"runReport property {property_id} as {account.client_email}: HTTP {status} " \
            f"{state}: {said}"
    if status == 401:
        return SourceAuthError("Google Analytics did not accept the service account's access "
                               f"token ({state}).", log_message=where)
    if status == 403:
        return SourceAuthError(
            f"Google Analytics denied access to property {property_id} ({state}): add the "
            f"service account {account.client_email} to the property as a Viewer, and enable "
            "the Google Analytics Data API in its Cloud project.", log_message=where)
    if status == 404:
        return SourceNotFoundError(f"Google Analytics has no property {property_id} "
                                   f"({state}).", log_message=where)
    if status == 429:
        after = f" Retry after {retry_after} seconds." if retry_after.isdigit() else ""
        return SourceRateLimitedError(
            f"The Google Analytics quota of property {property_id} is used up ({state}); "
            f"try again later.{after}", log_message=where)
    if status == 400:
        reason = said or "no reason given"
        return SourceError(f"Google Analytics refused the report ({state}): {reason}. Check "
                           "the dataset's metrics, dates and filter.", log_message=where)
    return SourceError(f"Google Analytics failed ({state}).", log_message=where)


def _short(value: Any, limit: int = 80) -> str:
    """Text from Google's error, on one line, without anything shaped like a token."""
    if not isinstance(value, str):
        return ""
    text = re.sub(r"\bya29\.[\w.-]+|Bearer\s+\S+", "[token]", " ".join(value.split()))
    return text if len(text) <= limit else text[:limit] + "…"
