"""WMS 1.3.0 (and 1.1.1): each dataset as a Web Map Service, at ``.../WMSServer``.

One WMS per dataset; each layer with geometry is a named WMS layer (Name: its id, Title: its
name) under a root layer that groups them (Name: the dataset's id). GetMap draws with aggdraw
(antialiased, Anti-Grain Geometry) in the styles of the layer's drawing info; GetFeatureInfo
answers in text, HTML, GeoJSON and XML; errors are ServiceExceptionReports with HTTP 400.
"""

from __future__ import annotations

from koop_app.outputs import Offer, OutputRoute
from koop_app.outputs.wms import views
from koop_app.outputs.wms.errors import error_response

name = "wms"

routes = [
    OutputRoute(r"$namespace/$providerParamsWMSServer", views.wms_server, "wms",
                error_response=error_response),
]

offers = [Offer("WMS", "wms")]

__all__ = ["name", "offers", "routes"]
