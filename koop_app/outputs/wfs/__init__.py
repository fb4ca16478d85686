"""WFS 2.0.0 and 1.1.0: one endpoint per dataset, ``<provider>/[<host>/]<id>/WFSServer``.

Every layer and table of the dataset is a feature type (``koop:<layer name>``; tables have no
geometry and ``NoCRS``). GetCapabilities, DescribeFeatureType, GetFeature (GML 3.2, GML 3.1.1,
GeoJSON), ListStoredQueries and DescribeStoredQueries (GetFeatureById), over KVP (GET or form
POST) and XML POST; errors are OWS ExceptionReports.
"""

from __future__ import annotations

from koop_app.outputs import Offer, OutputRoute
from koop_app.outputs.wfs.errors import exception_report
from koop_app.outputs.wfs.views import wfs_server

name = "wfs"
routes = [
    OutputRoute(r"$namespace/$providerParamsWFSServer", wfs_server, "wfs",
                error_response=exception_report),
]
offers = [Offer("WFS", "wfs")]

__all__ = ["name", "offers", "routes"]
