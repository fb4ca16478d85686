"""Pages for people: the landing page (``/``) and a map preview of each service and layer.

The previews draw a layer through its own FeatureServer with Leaflet and Esri Leaflet, which
the site serves itself (``scripts/ensure-web-assets`` installs them from the npm registry into
the app's static files): no CDN, and no basemap unless ``KOOP["PREVIEW_BASEMAP"]`` names one.
"""

from __future__ import annotations

from koop_app.outputs.pages.routes import routes

__all__ = ["routes"]
