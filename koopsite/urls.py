"""Site URLs: the admin and the koop app's routes at the root (Koop's URL layout)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("koop_app.urls")),
]
