"""The GeoServices route table (regular expressions; a trailing slash is always accepted)."""

from __future__ import annotations

from koop_app.outputs import OutputRoute
from koop_app.outputs.geoservices import views

FEATURE_SERVER = r"$namespace/rest/services/$providerParamsFeatureServer"

routes = [
    OutputRoute(r"rest/info", views.RestInfoView.as_view(), "geoservices-rest-info",
                absolute=True),
    OutputRoute(r"rest/services", views.CatalogView.as_view(), "geoservices-catalog",
                absolute=True),
    OutputRoute(r"$namespace/rest/info", views.RestInfoView.as_view(),
                "geoservices-provider-info"),
    OutputRoute(FEATURE_SERVER, views.ServiceView.as_view(), "geoservices-service"),
    OutputRoute(FEATURE_SERVER + r"/layers", views.LayersView.as_view(), "geoservices-layers"),
    OutputRoute(FEATURE_SERVER + r"/(?P<layer>[^/]+)", views.LayerView.as_view(),
                "geoservices-layer"),
    OutputRoute(FEATURE_SERVER + r"/(?P<layer>[^/]+)/info", views.LayerView.as_view(),
                "geoservices-layer-info"),
    OutputRoute(FEATURE_SERVER + r"/(?P<layer>[^/]+)/query", views.QueryView.as_view(),
                "geoservices-query"),
    OutputRoute(FEATURE_SERVER + r"/(?P<layer>[^/]+)/(?P<object_id>-?\d+)",
                views.FeatureView.as_view(), "geoservices-feature"),
]
