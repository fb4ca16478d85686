"""The request path every output shares: dataset, layers, the engine, HTTP caching, errors.

Outputs other than GeoServices are plain Django views. Their routes pass the dataset's access
check before they run (``koop_app.urls`` wraps them, answering refusals with the route's
``error_response``); the view then

1. reads its standard's parameters and turns them into GeoServices query parameters (``where``,
   ``geometry``, ``resultOffset``...), so that pass-through providers, which read those, filter
   at the source as they do for the FeatureServer;
2. gets the layers (``open_layers``) and runs the query (``run_query``): the same data layer,
   checks and engine as ``/query``, the same record limits;
3. encodes the result in its format and answers through ``cacheable`` (ETag/Last-Modified from
   the data version, 304, private caching of secured datasets).

``answering_errors`` wraps a view: our errors become the standard's error answer, anything else
is logged as a crash (tests fail on it) and answered as a 500 in that format.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase, HttpResponseNotModified

from koop_app import data, lookup, query
from koop_app.auth import access as auth_access
from koop_app.errors import KoopError, NotFoundError, ProviderError
from koop_app.models import Dataset
from koop_app.outputs.geoservices.handlers import log_crash, request_error
from koop_app.outputs.http_caching import validators

ErrorRenderer = Callable[[HttpRequest, KoopError], HttpResponseBase]


class CrashError(KoopError):
    """A crash of ours, as outputs show it: a reference to the log, never internals."""

    status = 500


def answering_errors(render_error: ErrorRenderer) -> Callable[[Callable[..., Any]],
                                                             Callable[..., Any]]:
    """A view decorator: errors answered by ``render_error`` in the output's own format."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def answered(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            try:
                return view(request, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - every failure gets the standard's answer
                known = request_error(exc)
                bug = known is None or (known.status == 500
                                        and not isinstance(known, ProviderError))
                if not bug:
                    return render_error(request, known)
                if settings.DEBUG:
                    raise
                reference = log_crash(exc, request.path)
                return render_error(request, CrashError(
                    f"An unexpected error occurred, reference {reference}."))

        return answered

    return decorate


def request_params(request: HttpRequest) -> dict[str, str]:
    """The query string merged with a form-encoded POST body (the body wins)."""
    params = {key: request.GET.get(key, "") for key in request.GET}
    if request.method == "POST":
        params.update({key: request.POST.get(key, "") for key in request.POST})
    return params


def find_dataset(provider: str, host: str | None = None, id: str | None = None) -> Dataset:
    """The enabled dataset of a route (its access was checked by the route's guard)."""
    if "\x00" in (host or "") + (id or ""):  # PostgreSQL refuses NUL in a query
        raise NotFoundError("Service not found.")
    try:
        return lookup.find_dataset(provider, host or "", id or "")
    except Dataset.DoesNotExist:
        raise NotFoundError("Service not found.") from None


def open_layers(request: HttpRequest, dataset: Dataset, *, layer: int | None = None,
                method: str | None = None, params: Mapping[str, str] | None = None
                ) -> data.LayerSet:
    """The dataset's layers; a pass-through provider is asked with ``params`` (GeoServices
    query parameters: it filters at the source what it can, as for ``/query``)."""
    asked = dict(params or {})
    if not auth_access.provider_authenticates(dataset.provider.plugin):
        asked.pop("token", None)  # the site's token is ours, never forwarded to a source
    provider_request = data.provider_request(dataset, layer=layer, method=method, query=asked,
                                             http_request=request)
    return data.get_layers(dataset, provider_request)


def limits_of(dataset: Dataset, table: data.LayerTable) -> query.RecordLimits:
    return query.RecordLimits.for_layer(dataset.effective_max_record_count,
                                        table.schema.geometry_type)


def parse(dataset: Dataset, table: data.LayerTable, params: Mapping[str, str]) -> query.Query:
    """GeoServices query parameters checked against the layer (less what a pass-through
    source applied already)."""
    return query.parse_query(query.without_applied(dict(params), table), table.schema,
                             case_sensitive=dataset.case_sensitive_strings)


def run_query(dataset: Dataset, table: data.LayerTable, params: Mapping[str, str]
              ) -> tuple[query.Query, query.Result]:
    """The answer of the engine to GeoServices query ``params`` on ``table``."""
    parsed = parse(dataset, table, params)
    return parsed, query.run(parsed, table, limits_of(dataset, table))


def cacheable(request: HttpRequest, response: HttpResponseBase, dataset: Dataset,
              layers: data.LayerSet, params: Mapping[str, str], *, shared: bool = False
              ) -> HttpResponseBase:
    """``response`` with validators from the data version (a 304 when the client's copy is
    current) and Cache-Control; ``shared`` lets shared caches keep it until the data's TTL.

    Answers of secured datasets stay in the caller's cache only, keyed by its credentials.
    """
    found = validators(request.META, params, layers, shared=shared)
    if found is None:
        response["Cache-Control"] = "no-store"
    else:
        if found.current:
            response = HttpResponseNotModified()
        found.apply(response)
    return private_if_secured(response, dataset)


def private_if_secured(response: HttpResponseBase, dataset: Dataset) -> HttpResponseBase:
    if not dataset.is_public or auth_access.provider_authenticates(dataset.provider.plugin):
        cache_control = response.get("Cache-Control", "")
        response["Cache-Control"] = cache_control.replace("public", "private") or "private"
        response["Vary"] = "Authorization, X-Esri-Authorization, Cookie"
    return response
