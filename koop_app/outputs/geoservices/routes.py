"""The GeoServices route table (regular expressions; a trailing slash is always accepted)."""

from __future__ import annotations

from typing import Any

from django.views.decorators.gzip import gzip_page

from koop_app.outputs import OutputRoute
from koop_app.outputs.geoservices import views


def _view(view_class: type) -> Any:
    """The view, gzip-compressed for clients that accept it (ArcGIS clients do)."""
    return gzip_page(view_class.as_view())


FEATURE_SERVER = r"$namespace/rest/services/$providerParamsFeatureServer"
# ArcGIS Server operations a read-only FeatureServer lacks: answered "not supported" (code 400)
# as ArcGIS Server does, not as unknown URLs. ``uploads`` has sub-resources of its own.
EDITS = r"applyEdits|addFeatures|updateFeatures|deleteFeatures|calculate|append|uploads"
SERVICE_UNSUPPORTED = (rf"(?:{EDITS}|createReplica|synchronizeReplica|unRegisterReplica|replicas"
                       r"|extractChanges|query|queryContingentValues)(?:/[^?]*)?")
LAYER_UNSUPPORTED = (rf"(?:{EDITS}|addAttachment|updateAttachment|deleteAttachments"
                     r"|queryAttachments|queryTopFeatures|queryAnalytic|queryBins|queryDomains"
                     r"|validateSQL)(?:/[^?]*)?")

routes = [
    OutputRoute(r"rest/info", _view(views.RestInfoView), "geoservices-rest-info",
                absolute=True),
    OutputRoute(r"rest/services", _view(views.CatalogView), "geoservices-catalog",
                absolute=True),
    # A folder of the services directory; its services' routes are koop_app.urls' aliases.
    OutputRoute(r"rest/services/(?P<folder>[^/]+)", _view(views.FolderView),
                "geoservices-folder", absolute=True),
    OutputRoute(r"rest/generateToken", _view(views.GenerateTokenView),
                "geoservices-generate-token", absolute=True),
    OutputRoute(r"$namespace/rest/info", _view(views.RestInfoView),
                "geoservices-provider-info"),
    OutputRoute(r"$namespace/rest/generateToken", _view(views.GenerateTokenView),
                "geoservices-provider-generate-token"),
    OutputRoute(FEATURE_SERVER, _view(views.ServiceView), "geoservices-service"),
    OutputRoute(FEATURE_SERVER + r"/layers", _view(views.LayersView), "geoservices-layers"),
    OutputRoute(FEATURE_SERVER + r"/queryDomains", _view(views.QueryDomainsView),
                "geoservices-query-domains"),
    OutputRoute(FEATURE_SERVER + "/" + SERVICE_UNSUPPORTED, _view(views.UnsupportedOperationView),
                "geoservices-service-unsupported"),
    OutputRoute(FEATURE_SERVER + r"/(?P<layer>[^/]+)", _view(views.LayerView),
                "geoservices-layer"),
    OutputRoute(FEATURE_SERVER + r"/(?P<layer>[^/]+)/info", _view(views.LayerView),
                "geoservices-layer-info"),
    OutputRoute(FEATURE_SERVER + r"/(?P<layer>[^/]+)/query", _view(views.QueryView),
                "geoservices-query"),
    OutputRoute(FEATURE_SERVER + r"/(?P<layer>[^/]+)/queryRelatedRecords",
                _view(views.QueryRelatedRecordsView), "geoservices-query-related"),
    OutputRoute(FEATURE_SERVER + r"/(?P<layer>[^/]+)/generateRenderer",
                _view(views.GenerateRendererView), "geoservices-generate-renderer"),
    OutputRoute(FEATURE_SERVER + r"/(?P<layer>[^/]+)/(?P<object_id>-?\d+)",
                _view(views.FeatureView), "geoservices-feature"),
    OutputRoute(FEATURE_SERVER + r"/(?P<layer>[^/]+)/" + LAYER_UNSUPPORTED,
                _view(views.UnsupportedOperationView), "geoservices-layer-unsupported"),
]
