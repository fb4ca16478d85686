"""The pages' routes: ``/``, and ``<provider>/preview/[<host>/]<id>/FeatureServer[/<layer>]``.

A preview's path is its service's path with ``rest/services`` read as ``preview``, outside
``/rest/`` so that GeoServices answers stay JSON there and these pages keep real HTTP statuses.
"""

from __future__ import annotations

from koop_app.outputs import OutputRoute
from koop_app.outputs.pages import views

PREVIEW = r"$namespace/preview/$providerParamsFeatureServer"

routes = [
    OutputRoute(r"", views.landing, "landing", absolute=True),
    OutputRoute(PREVIEW, views.PreviewView.as_view(), "pages-preview-service"),
    OutputRoute(PREVIEW + r"/(?P<layer>\d+)", views.PreviewView.as_view(),
                "pages-preview-layer"),
]
