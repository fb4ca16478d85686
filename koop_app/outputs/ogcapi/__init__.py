"""OGC API - Features (Parts 1 Core, 2 CRS, 3 Filtering with CQL2) for every dataset.

One API per dataset at ``<provider>/[<host>/]<id>/OGCFeatureServer``: each layer, and each
table (features with a null geometry), is a collection whose id is its layer id. Requests go
through the same data layer, engine, access checks, record limits and HTTP caching as the
FeatureServer; see ``views`` for the request path and ``conformance`` for what is claimed.
"""

from __future__ import annotations

from koop_app.outputs import Offer
from koop_app.outputs.ogcapi.routes import routes
from koop_app.outputs.ogcapi.views import LANDING_ROUTE

name = "ogcapi"
offers = [Offer("OGC API Features", LANDING_ROUTE)]

__all__ = ["name", "offers", "routes"]
