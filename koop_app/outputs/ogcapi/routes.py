"""The routes of OGC API - Features: ``<provider>/[<host>/]<id>/OGCFeatureServer/...``."""

from __future__ import annotations

from koop_app.outputs import OutputRoute
from koop_app.outputs.ogcapi import views
from koop_app.outputs.ogcapi.problems import error_response

ROOT = r"$namespace/$providerParamsOGCFeatureServer"
COLLECTION = ROOT + r"/collections/(?P<collection>[^/]+)"

routes = [
    OutputRoute(ROOT, views.landing, views.LANDING_ROUTE, error_response=error_response),
    OutputRoute(ROOT + r"/api", views.api_definition, "ogcapi-api",
                error_response=error_response),
    OutputRoute(ROOT + r"/conformance", views.conformance, "ogcapi-conformance",
                error_response=error_response),
    OutputRoute(ROOT + r"/collections", views.collections, "ogcapi-collections",
                error_response=error_response),
    OutputRoute(COLLECTION, views.collection, "ogcapi-collection",
                error_response=error_response),
    OutputRoute(COLLECTION + r"/queryables", views.queryables, "ogcapi-queryables",
                error_response=error_response),
    OutputRoute(COLLECTION + r"/items", views.items, "ogcapi-items",
                error_response=error_response),
    OutputRoute(COLLECTION + r"/items/(?P<feature>[^/]+)", views.item, "ogcapi-item",
                error_response=error_response),
]
