"""The GeoServices (FeatureServer) output."""

from __future__ import annotations

from koop_app.outputs import Offer
from koop_app.outputs.geoservices.routes import routes

name = "geoservices"
offers = [Offer("FeatureServer", "geoservices-service", service=True)]

__all__ = ["name", "offers", "routes"]
