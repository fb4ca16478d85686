"""The GeoServices (FeatureServer) output."""

from __future__ import annotations

from koop_app.outputs.geoservices.routes import routes

__all__ = ["routes"]
