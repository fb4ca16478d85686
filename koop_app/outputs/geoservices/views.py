"""GeoServices views: each parses, calls ``data.get_table`` and ``query.run``, and responds."""

from __future__ import annotations

import time
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from koop_app import data, lookup, query
from koop_app.auth import access as auth_access
from koop_app.auth import service as token_service
from koop_app.auth.drf import DatasetAccess, KoopAuthentication, request_user
from koop_app.conf import koop_settings
from koop_app.encoders import esri_json, formats
from koop_app.encoders.fields import field_json
from koop_app.errors import (
    InvalidParameterError,
    NotFoundError,
    TokenGenerationError,
    UnsupportedOperationError,
)
from koop_app.models import Dataset, Provider
from koop_app.outputs import output_modules, output_name
from koop_app.outputs.geoservices import catalog, drawing, html, serializers
from koop_app.outputs.geoservices.handlers import geoservices_exception_handler
from koop_app.outputs.geoservices.http_caching import conditional
from koop_app.outputs.geoservices.negotiation import FormatNegotiation
from koop_app.outputs.geoservices.renderers import (
    EsriJSONRenderer,
    GeoJSONRenderer,
    PBFRenderer,
    PrettyJSONRenderer,
    jsonp_callback,
    streamed_body,
)
from koop_app.outputs.serving import private_if_secured
from koop_app.provider import ProviderRequest
from koop_app.query import classify, related
from koop_app.query.where import compile_where
from koop_app.registry import registry


class GeoServicesView(APIView):
    """Base: merged GET/POST parameters, ``f`` negotiation, JSONP, GeoServices errors (CORS:
    django-cors-headers, see the site's settings)."""

    renderer_classes = [EsriJSONRenderer, PrettyJSONRenderer, GeoJSONRenderer,
                        html.HTMLRenderer]
    parser_classes = [FormParser, MultiPartParser]
    content_negotiation_class = FormatNegotiation
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    # Nothing from the host project's REST_FRAMEWORK defaults: its API's throttles and URL
    # versioning are not ours (KOOP["RATE_LIMIT"] limits these routes).
    throttle_classes: list[Any] = []
    versioning_class = None

    def get_exception_handler(self):
        return geoservices_exception_handler

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        drf_request = super().initialize_request(request, *args, **kwargs)
        params = {key: request.GET.get(key, "") for key in request.GET}
        if request.method == "POST":
            params.update({key: request.POST.get(key, "") for key in request.POST})
        drf_request.koop_params = params
        return drf_request

    def get_renderer_context(self) -> dict[str, Any]:
        context = super().get_renderer_context()
        params = getattr(self.request, "koop_params", {}) if self.request else {}
        try:
            context["callback"] = jsonp_callback(params)
        except InvalidParameterError:
            context["callback"] = None  # initial() answers the error
        return context

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        jsonp_callback(request.koop_params)

    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(None, status=204)

    def get(self, request: Request, **kwargs: Any) -> Response:
        response = self.respond_with(request, self.answer(request, **kwargs))
        served = getattr(self, "served", None)
        return conditional(request, response, served) if served is not None else response

    def post(self, request: Request, **kwargs: Any) -> Response:
        return self.get(request, **kwargs)

    def respond_with(self, request: Request, data: Any) -> Response | StreamingHttpResponse:
        """``data`` rendered by the negotiated renderer, or streamed when its features are."""
        renderer = request.accepted_renderer
        if renderer.format in formats.STREAMED_FORMATS:
            callback = jsonp_callback(request.koop_params)
            chunks = streamed_body(data, callback)
            if chunks is not None:
                media_type = "application/javascript" if callback else renderer.media_type
                return StreamingHttpResponse(chunks, content_type=f"{media_type}; charset=utf-8")
        return Response(data)

    def answer(self, request: Request, **kwargs: Any) -> dict[str, Any]:
        raise NotImplementedError


class RestInfoView(GeoServicesView):
    """``/rest/info`` and ``/<provider>/rest/info``: versions and the token service."""

    def answer(self, request: Request, provider: str | None = None, **kwargs: Any
               ) -> dict[str, Any]:
        plugin = registry.get(provider) if provider else None
        info: dict[str, Any] = {
            "currentVersion": serializers.CURRENT_VERSION,
            "fullVersion": f"{serializers.CURRENT_VERSION}.0",
            "authInfo": token_service.auth_info(request._request, plugin),
        }
        if provider:
            info["provider"] = provider
        # What this server offers besides GeoServices: each output and the kinds it serves.
        info["outputs"] = [{"name": output_name(module),
                            "offers": sorted({o.kind for o in getattr(module, "offers", ())})}
                           for module in output_modules()]
        return info


class GenerateTokenView(GeoServicesView):
    """``/rest/generateToken`` and ``/<provider>/rest/generateToken``: POST (GET if enabled)."""

    def get(self, request: Request, provider: str | None = None, **kwargs: Any) -> Response:
        if not koop_settings.TOKEN_ALLOW_GET:
            raise TokenGenerationError(details=["Use POST to generate a token."])
        return self.respond(request, provider, request.koop_params)

    def post(self, request: Request, provider: str | None = None, **kwargs: Any) -> Response:
        # Credentials count only in the body: a query string ends up in access logs.
        body = {key: request._request.POST.get(key, "") for key in request._request.POST}
        return self.respond(request, provider, body)

    def respond(self, request: Request, provider: str | None, params: dict[str, str]
                ) -> Response:
        plugin = registry.get(provider) if provider else None
        response = Response(token_service.generate_token(request._request, params, plugin))
        response["Cache-Control"] = "no-store"
        return response


class DatasetView(GeoServicesView):
    """Views under ``.../FeatureServer``: resolve the dataset, check access, then answer.

    ``DatasetAccess`` runs before ``answer`` (DRF's ``initial``), so a refused request never
    reaches the data layer and never starts a fetch.
    """

    authentication_classes = [KoopAuthentication]
    permission_classes = [DatasetAccess]
    checks_dataset_access = True  # koop_app.urls adds no second gate in front of it
    koop_method: str | None = None  # ProviderRequest.params["method"] for the provider's hooks
    _parsed_common: query.Query | None = None  # ProviderRequest.parsed
    _dataset: Dataset | None = None

    def dataset(self, provider: str, host: str | None, id: str | None) -> Dataset:
        if "\x00" in (host or "") + (id or ""):  # PostgreSQL refuses NUL in a query
            raise NotFoundError("Service not found.")
        if self._dataset is not None:
            return self._dataset
        try:
            self._dataset = lookup.find_dataset(provider, host or "", id or "")
        except Dataset.DoesNotExist:
            raise NotFoundError("Service not found.") from None
        return self._dataset

    def get_dataset(self) -> Dataset:
        return self.dataset(self.kwargs["provider"], self.kwargs.get("host"),
                            self.kwargs.get("id"))

    def get_provider_request(self, dataset: Dataset) -> ProviderRequest:
        try:
            layer = int(self.kwargs.get("layer"))
        except (TypeError, ValueError):
            layer = None
        return data.provider_request(dataset, layer=layer, method=self.koop_method,
                                     query=self.request.koop_params,
                                     http_request=self.request._request)

    def get(self, request: Request, **kwargs: Any) -> Response:
        response = self.before_data(request, **kwargs)
        if response is None:
            response = super().get(request, **kwargs)
        if self._dataset is not None:
            private_if_secured(response, self._dataset)
        return response

    def before_data(self, request: Request, **kwargs: Any) -> Response | None:
        """An answer decided before any data is loaded (a 304), or None to go on."""
        return None

    def provider_request_of(self, request: Request, dataset: Dataset, layer: int | None,
                            method: str | None) -> ProviderRequest:
        params = request.koop_params
        if not auth_access.provider_authenticates(dataset.provider.plugin):
            # The site's token is ours: a provider forwarding parameters must not pass it on.
            params = {key: value for key, value in params.items() if key != "token"}
        provider_request = data.provider_request(dataset, layer=layer, method=method,
                                                 query=params, http_request=request._request)
        provider_request.parsed = self._parsed_common
        return provider_request

    def layers(self, request: Request, dataset: Dataset, layer: int | None,
               method: str | None) -> data.LayerSet:
        provider_request = self.provider_request_of(request, dataset, layer, method)
        self.served = data.get_layers(dataset, provider_request)
        return self.served

    def layer_table(self, request: Request, method: str, provider: str, layer: str,
                    host: str | None, id: str | None) -> tuple[Dataset, data.LayerTable]:
        """The dataset of the route and the table of its ``layer`` segment."""
        dataset = self.dataset(provider, host, id)
        layer_id = self.layer_id(layer)
        return dataset, self.layers(request, dataset, layer_id, method).layer(layer_id)

    @staticmethod
    def layer_id(layer: str) -> int:
        try:
            return int(layer)
        except ValueError:
            raise NotFoundError("Layer not found.",
                                details=[f"Invalid layer id {layer!r}"]) from None

    @staticmethod
    def name_of(dataset: Dataset) -> str:
        return dataset.name or dataset.dataset_id or dataset.provider.name


def limits_of(dataset: Dataset, table: data.LayerTable) -> query.RecordLimits:
    return query.RecordLimits.for_layer(dataset.effective_max_record_count,
                                        table.schema.geometry_type)


class ServiceView(DatasetView):
    def answer(self, request: Request, provider: str, host: str | None = None,
               id: str | None = None) -> dict[str, Any]:
        dataset = self.dataset(provider, host, id)
        layers = self.layers(request, dataset, None, None)
        return serializers.service_json(layers, name=self.name_of(dataset),
                                        description=dataset.description,
                                        max_record_count=dataset.effective_max_record_count)


class LayersView(DatasetView):
    koop_method = "layers"

    def answer(self, request: Request, provider: str, host: str | None = None,
               id: str | None = None) -> dict[str, Any]:
        dataset = self.dataset(provider, host, id)
        layers = self.layers(request, dataset, None, "layers")
        out: dict[str, Any] = {"layers": [], "tables": []}
        for table in layers.layers:
            info = serializers.layer_json(table, name=self.name_of(dataset),
                                          limits=limits_of(dataset, table),
                                          relationships=layers.relationships)
            out["tables" if table.is_table else "layers"].append(info)
        return out


class LayerView(DatasetView):
    def answer(self, request: Request, provider: str, layer: str, host: str | None = None,
               id: str | None = None) -> dict[str, Any]:
        dataset = self.dataset(provider, host, id)
        layer_id = self.layer_id(layer)
        layers = self.layers(request, dataset, layer_id, None)
        table = layers.layer(layer_id)
        return serializers.layer_json(table, name=self.name_of(dataset),
                                      limits=limits_of(dataset, table),
                                      relationships=layers.relationships)


class QueryView(DatasetView):
    """``/FeatureServer/<layer>/query``.

    The request path: the dataset and access (``DatasetAccess``); the parameters parsed and
    checked against the layer's schema as the stored copy describes it, and the client's
    conditional headers against its version, before any data is loaded; then the layer, the
    engine, and the encoder ``f`` names.
    """

    koop_method = "query"
    renderer_classes = [*GeoServicesView.renderer_classes, PBFRenderer]
    _checked: tuple[str, query.Query] | None = None  # (version, the query parsed against it)

    def before_data(self, request: Request, provider: str, layer: str, host: str | None = None,
                    id: str | None = None, **kwargs: Any) -> Response | None:
        dataset = self.dataset(provider, host, id)
        layer_id = self.layer_id(layer)
        if dataset.cache_policy == Provider.PASS_THROUGH:
            # The source answers each request: what can be checked is, before it is asked.
            self._parsed_common = query.parse_common(request.koop_params)
            return None
        pointer = data.described(dataset, self.provider_request_of(request, dataset, layer_id,
                                                                   "query"))
        entry = next((e for e in pointer.layers if e.id == layer_id), None) if pointer else None
        if pointer is None or entry is None or pointer.expires_at <= time.time():
            # Not loaded yet, no such layer (the usual path says so), or expired (loading the
            # layers starts its refresh).
            return None
        self._checked = (pointer.version, query.parse_query(
            request.koop_params, entry.schema, case_sensitive=dataset.case_sensitive_strings))
        response = conditional(request, Response(None), data.LayerSet.of(pointer))
        return response if response.status_code == 304 else None

    def answer(self, request: Request, provider: str, layer: str, host: str | None = None,
               id: str | None = None) -> Any:
        dataset, table = self.layer_table(request, "query", provider, layer, host, id)
        if html.is_form_only(request):
            return {}  # f=html with no question: the page is the empty form
        if self._checked is not None and self._checked[0] == table.version:
            parsed = self._checked[1]
        else:
            parsed = query.parse_query(query.without_applied(request.koop_params, table),
                                       table.schema,
                                       case_sensitive=dataset.case_sensitive_strings)
        result = query.run(parsed, table, limits_of(dataset, table))
        return formats.encode(request.accepted_renderer.format, result,
                              parsed.geometry_precision)


class FeatureView(DatasetView):
    """``/FeatureServer/<layer>/<objectId>``: one feature."""

    koop_method = "feature"

    def answer(self, request: Request, provider: str, layer: str, object_id: str,
               host: str | None = None, id: str | None = None) -> dict[str, Any]:
        dataset, table = self.layer_table(request, "feature", provider, layer, host, id)
        params = {"objectIds": object_id, "outFields": "*",
                  "outSR": request.koop_params.get("outSR", "")}
        parsed = query.parse_query(params, table.schema)
        result = query.run(parsed, table, limits_of(dataset, table))
        return esri_json.feature_json(result)


class CatalogView(GeoServicesView):
    """``/rest/services``: folders (one per provider) and root services the caller may read."""

    authentication_classes = [KoopAuthentication]

    def answer(self, request: Request, **kwargs: Any) -> dict[str, Any]:
        return catalog.root(request._request, request_user(request))


class FolderView(CatalogView):
    """``/rest/services/<folder>``: a provider's services the caller may read."""

    def answer(self, request: Request, folder: str = "", **kwargs: Any) -> dict[str, Any]:
        return catalog.folder(request._request, request_user(request), folder)


class GenerateRendererView(DatasetView):
    """``/FeatureServer/<layer>/generateRenderer``: class breaks or unique values."""

    koop_method = "generateRenderer"

    def answer(self, request: Request, provider: str, layer: str, host: str | None = None,
               id: str | None = None) -> dict[str, Any]:
        dataset, table = self.layer_table(request, "generateRenderer", provider, layer, host, id)
        definition = classify.parse_definition(request.koop_params)
        where = compile_where(request.koop_params.get("where"), table.schema,
                              case_sensitive=dataset.case_sensitive_strings)
        geometry_type = table.schema.geometry_type
        if definition["type"] == "classBreaksDef":
            breaks = classify.class_breaks(definition, table, where)
            return drawing.class_breaks_json(breaks, definition, geometry_type)
        values = classify.unique_values(definition, table, where)
        return drawing.unique_values_json(values, definition, geometry_type)


class QueryRelatedRecordsView(DatasetView):
    """``/FeatureServer/<layer>/queryRelatedRecords``: related records grouped by feature."""

    koop_method = "queryRelatedRecords"

    def answer(self, request: Request, provider: str, layer: str, host: str | None = None,
               id: str | None = None) -> dict[str, Any]:
        dataset = self.dataset(provider, host, id)
        layer_id = self.layer_id(layer)
        layers = self.layers(request, dataset, layer_id, "queryRelatedRecords")
        origin = layers.layer(layer_id)
        relationship = related.find_relationship(request.koop_params, origin,
                                                 layers.relationships)
        target = layers.layer(int(relationship["relatedTableId"]))
        fields, groups = related.related_records(request.koop_params, origin, target,
                                                 relationship,
                                                 case_sensitive=dataset.case_sensitive_strings)
        return related.related_json(fields, groups, field_json)


class UnsupportedOperationView(GeoServicesView):
    """Edits and other operations ArcGIS Server offers and a read-only FeatureServer does not.

    Answered as ArcGIS Server answers them on a service without the capability, whatever the
    service or layer: clients then show a clear message instead of a 404.
    """

    def answer(self, request: Request, **kwargs: Any) -> dict[str, Any]:
        raise UnsupportedOperationError()


class QueryDomainsView(DatasetView):
    """``/FeatureServer/queryDomains``: the domains the layers use (none, here)."""

    def answer(self, request: Request, provider: str, host: str | None = None,
               id: str | None = None) -> dict[str, Any]:
        self.dataset(provider, host, id)
        return {"domains": []}
