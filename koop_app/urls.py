"""The route table: every output's routes multiplied by the registered providers.

``$namespace`` becomes the provider's name and ``$providerParams`` its route parameters
(``<host>/<id>/``, ``<id>/`` or nothing), following Koop's URL layout. Provider extra routes
are mounted under ``<name>/``. URL names are ``koop:<provider>:<route name>``.

Each route under ``<provider>/rest/services/`` is mounted a second time under
``rest/services/<provider>/`` (``koop:<provider>:<route name>-in-folder``), the same view with
the same arguments: ArcGIS clients browse the services directory by folders and build a
service's URL from its name, ``<root>/rest/services/<name>/FeatureServer``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpResponseNotAllowed
from django.urls import include, path, re_path

from koop_app.auth.guards import guard_dataset_view
from koop_app.health import health
from koop_app.outputs import folder_alias, folder_route_name, output_modules
from koop_app.provider import Provider
from koop_app.registry import registry

app_name = "koop"


def provider_params(provider: Provider) -> str:
    parts = []
    if provider.hosts:
        parts.append(r"(?P<host>[^/]+)/")
    if not provider.disable_id_param:
        parts.append(r"(?P<id>[^/]+)/")
    return "".join(parts)


def _allow(methods: tuple[str, ...], handler: Callable[..., Any]) -> Callable[..., Any]:
    def view(request: Any, **kwargs: Any) -> Any:
        if request.method not in methods:
            return HttpResponseNotAllowed(methods)
        return handler(request, **kwargs)

    return view


def _gated(route: Any, provider: Provider) -> Callable[..., Any]:
    """A route that names a dataset passes its access check first (koop_app/auth).

    Views that check access themselves (the GeoServices DRF views) are left as they are.
    """
    view_class = getattr(route.view, "view_class", None)
    if "$providerParams" not in route.path or getattr(view_class, "checks_dataset_access", False):
        return route.view
    return guard_dataset_view(route.view, provider, route.error_response)


def build_urlpatterns() -> list[Any]:
    routes = [route for module in output_modules() for route in module.routes]
    patterns: list[Any] = [
        # "" is the site's root (the landing page): no optional slash before it.
        re_path(rf"^{route.path}/?$" if route.path else r"^$", route.view, name=route.name)
        for route in routes
        if route.absolute
    ]
    patterns.append(path("health", health, name="health"))
    provider_routes = [(route.path, route.name, route) for route in routes if not route.absolute]
    provider_routes += [(alias, folder_route_name(route.name), route)
                        for route in routes if not route.absolute
                        for alias in [folder_alias(route.path)] if alias is not None]
    for provider in registry.all():
        provider_patterns = [
            re_path(
                "^"
                + route_path.replace("$namespace", provider.name).replace(
                    "$providerParams", provider_params(provider)
                )
                + "/?$",
                _gated(route, provider),
                {"provider": provider.name},
                name=name,
            )
            for route_path, name, route in provider_routes
        ]
        provider_patterns += [
            path(f"{provider.name}/{route.path}",
                 _allow(route.methods, guard_dataset_view(handler, provider)))
            for route, handler in provider.get_route_handlers()
        ]
        patterns.append(path("", include((provider_patterns, provider.name))))
    return patterns


urlpatterns = build_urlpatterns()
