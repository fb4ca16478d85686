"""The access gate for views outside the GeoServices DRF views: other outputs, extra routes.

``koop_app.urls`` wraps every output route that names a dataset (its path holds
``$providerParams``) and every provider extra route whose parameters name one (``host``/``id``).
Refusals use real HTTP statuses here (401 with ``WWW-Authenticate: Bearer``, 403), with the
GeoServices error body; under ``/rest/`` the GeoServices error middleware answers them with the
HTTP 200 that ArcGIS clients expect.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse

from koop_app import lookup
from koop_app.auth.access import check_access
from koop_app.errors import AuthError, KoopError
from koop_app.models import Dataset
from koop_app.provider import Provider, ProviderRequest


def guard_dataset_view(view: Callable[..., Any], provider: Provider,
                       render_error: Callable[[HttpRequest, KoopError], HttpResponse] | None = None
                       ) -> Callable[..., Any]:
    """``view`` behind the dataset's access check (its route kwargs name the dataset).

    Also a provider's extra routes: guarded when their ``host``/``id`` name a dataset.
    ``render_error`` answers a refusal in the output's own format (default: JSON).
    """

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        dataset = _dataset_of(provider, kwargs)
        if dataset is not None:
            refusal = _refusal(request, dataset, kwargs, render_error or error_response)
            if refusal is not None:
                return refusal
        return view(request, *args, **kwargs)

    return guarded


def _dataset_of(provider: Provider, kwargs: dict[str, Any]) -> Dataset | None:
    names_dataset = ("id" in kwargs or "host" in kwargs
                     or (provider.disable_id_param and not provider.hosts))
    if not names_dataset:
        return None
    return Dataset.objects.select_related("provider").filter(
        provider__name=provider.name, host=kwargs.get("host") or "",
        dataset_id=kwargs.get("id") or "").first()


def _refusal(request: HttpRequest, dataset: Dataset, kwargs: dict[str, Any],
             render_error: Callable[[HttpRequest, KoopError], HttpResponse]
             ) -> HttpResponse | None:
    try:  # stored options hold only what was set: the provider's defaults fill the rest
        options = lookup.clean_options(dataset)
    except KoopError:
        options = dict(dataset.options or {})
    provider_request = ProviderRequest(
        params={"host": dataset.host or None, "id": dataset.dataset_id or None,
                "layer": None, "method": None, **kwargs},
        query={key: request.GET.get(key, "") for key in request.GET},
        dataset=dataset, options=options, http_request=request)
    try:
        check_access(request, dataset, provider_request)
    except KoopError as exc:
        return render_error(request, exc)
    return None


def refusal_status(exc: KoopError) -> int:
    """The HTTP status of a refusal: 401 for a missing or invalid token, else the error's."""
    return 401 if exc.code in (498, 499) else exc.status


def error_response(request: HttpRequest, exc: KoopError) -> HttpResponse:
    body = {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}
    status = refusal_status(exc)
    response = HttpResponse(orjson.dumps(body), status=status, content_type="application/json")
    if status == 401 and isinstance(exc, AuthError):
        response["WWW-Authenticate"] = "Bearer"
    return response
