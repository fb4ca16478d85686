"""Routes that crash on purpose, beside the site's: for the crash-answer tests."""

from __future__ import annotations

from typing import Any

from django.urls import include, path

from koop_app.errors import KoopError
from koop_app.outputs.geoservices.views import GeoServicesView


class CrashingView(GeoServicesView):
    def answer(self, request: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("secret /srv/koop/settings.py DATABASE_URL=postgres://u:pw@db")


class FailingView(GeoServicesView):
    """A failure we raise on purpose that is still ours (as engine.py does for DuckDB)."""

    def answer(self, request: Any, **kwargs: Any) -> dict[str, Any]:
        raise KoopError(log_message="query failed: secret /srv/ DATABASE_URL RuntimeError")


def crashing_page(request: Any) -> Any:
    raise RuntimeError("secret /srv/koop/settings.py DATABASE_URL=postgres://u:pw@db")


urlpatterns = [
    path("crash/rest/boom", CrashingView.as_view()),
    path("crash/rest/plain", crashing_page),
    path("crash/rest/koop", FailingView.as_view()),
    path("crash/page", crashing_page),
    path("", include("koopsite.urls")),
]
