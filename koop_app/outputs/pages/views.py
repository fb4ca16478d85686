"""The landing page and the map previews (HTML, real HTTP statuses)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib.staticfiles import finders
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.clickjacking import xframe_options_sameorigin

from koop_app import lookup
from koop_app.auth import access as auth_access
from koop_app.auth.credentials import user_of
from koop_app.conf import koop_settings
from koop_app.errors import AuthError, KoopError
from koop_app.models import Dataset
from koop_app.outputs.geoservices.html import map_viewer_link, site_links

# Installed by scripts/ensure-web-assets (not in git): the preview says so when they are missing.
VENDOR_FILES = ("koop_app/vendor/leaflet/leaflet.js",
                "koop_app/vendor/esri-leaflet/esri-leaflet.js")
LANDING_PAGE_SIZE = 100


def visitor(request: HttpRequest) -> Any | None:
    """Who reads the page (a token's user, a staff session), or None; a bad token is nobody."""
    try:
        return user_of(request)
    except AuthError:
        return None


def _f_html(path: str, token: str = "") -> str:
    return f"{path}?{urlencode({'f': 'html', **({'token': token} if token else {})})}"


def landing(request: HttpRequest) -> HttpResponse:
    """``/``: the services directory, the previews of the datasets the visitor may read, the
    admin."""
    rows = auth_access.readable(
        Dataset.objects.select_related("provider")
        .filter(enabled=True, provider__enabled=True)
        .order_by("provider__name", "host", "dataset_id"), visitor(request))
    page = Paginator(rows, LANDING_PAGE_SIZE).get_page(request.GET.get("page"))
    datasets = []
    for dataset in page.object_list:
        service = dataset.feature_server_path()
        if service is None:
            continue
        datasets.append({
            "name": dataset.name or dataset.route_label,
            "route": dataset.route_label,
            "description": dataset.description,
            "public": dataset.is_public,
            "service_link": _f_html(service),
            "preview_link": _preview_path(dataset),
        })
    return render(request, "koop_app/pages/landing.html", {
        "title": "Koop",
        "site": site_links(),
        "datasets": datasets,
        "page": page,
        "rest_info": _reverse("koop:geoservices-rest-info"),
    })


def _reverse(name: str, **kwargs: Any) -> str | None:
    try:
        return reverse(name, kwargs=kwargs or None)
    except NoReverseMatch:
        return None


def _preview_path(dataset: Dataset, layer: int | None = None) -> str | None:
    kwargs = dataset.route_kwargs()
    if layer is None:
        return _reverse(f"koop:{dataset.provider.name}:pages-preview-service", **kwargs)
    return _reverse(f"koop:{dataset.provider.name}:pages-preview-layer", layer=str(layer),
                    **kwargs)


def problem(request: HttpRequest, status: int, message: str, *, sign_in: bool = False
            ) -> HttpResponse:
    """A page that says what went wrong, with its real HTTP status."""
    login = None
    if sign_in and koop_settings.SESSION_ACCESS:
        admin_login = _reverse("admin:login")
        if admin_login:
            login = f"{admin_login}?{urlencode({'next': request.get_full_path()})}"
    response = render(request, "koop_app/pages/problem.html", {
        "title": message, "site": site_links(), "message": message, "status": status,
        "login_link": login}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = "Bearer"
    return response


@method_decorator(xframe_options_sameorigin, name="dispatch")
class PreviewView(View):
    """A map of a service's layers, or of one layer, drawn through its FeatureServer.

    The page itself holds no data: the browser asks the FeatureServer, which checks access on
    every request. Access is checked here too, so that the page of a dataset the visitor may
    not read says so (and offers the admin's sign-in) instead of drawing an empty map.
    Pages of the same site may frame it (the admin's dataset page embeds it); others may not
    (X-Frame-Options SAMEORIGIN instead of the site's DENY).
    """

    checks_dataset_access = True  # koop_app.urls adds no JSON gate in front of this page
    http_method_names = ["get", "head"]

    def get(self, request: HttpRequest, provider: str, host: str | None = None,
            id: str | None = None, layer: str | None = None) -> HttpResponse:
        try:
            dataset = lookup.find_dataset(provider, host or "", id or "")
        except Dataset.DoesNotExist:
            return problem(request, 404, "Service not found.")
        try:
            auth_access.check_access(request, dataset)
        except AuthError as exc:
            return problem(request, exc.status, exc.message, sign_in=True)
        except KoopError as exc:
            return problem(request, exc.status, exc.message)
        service_path = dataset.feature_server_path()
        if service_path is None:
            return problem(request, 404, "Service not found.")
        token = request.GET.get("token", "").strip()
        service_url = request.build_absolute_uri(service_path)
        target = f"{service_path}/{layer}" if layer is not None else service_path
        target_url = request.build_absolute_uri(target)
        basemap = koop_settings.PREVIEW_BASEMAP or {}
        return render(request, "koop_app/pages/preview.html", {
            "title": f"Preview: {dataset.name or dataset.route_label}"
                     + (f", layer {layer}" if layer is not None else ""),
            "site": site_links(),
            "dataset": dataset,
            "layer": layer,
            "breadcrumbs": self.breadcrumbs(dataset, service_path, layer, token),
            "service_url": service_url,
            "target_url": target_url,
            "service_link": _f_html(service_path, token),
            "target_link": _f_html(target, token),
            "query_link": _f_html(f"{target}/query", token) if layer is not None else None,
            "service_preview_link": _preview_path(dataset) if layer is not None else None,
            "map_viewer_link": map_viewer_link(target_url),
            "token": token,
            "basemap_url": basemap.get("url", ""),
            "basemap_attribution": basemap.get("attribution", ""),
            "vendor_ready": all(finders.find(path) for path in VENDOR_FILES),
            # ?embed=1: the map alone, for a frame (the admin's dataset page)
            "embed": request.GET.get("embed") == "1",
        })

    @staticmethod
    def breadcrumbs(dataset: Dataset, service_path: str, layer: str | None, token: str
                    ) -> list[tuple[str, str | None]]:
        crumbs: list[tuple[str, str | None]] = []
        links = site_links()
        if links["home"]:
            crumbs.append(("Home", links["home"]))
        if links["catalog"]:
            crumbs.append(("Services", links["catalog"]))
        crumbs.append((f"{dataset.route_label} (FeatureServer)", _f_html(service_path, token)))
        if layer is not None:
            crumbs.append((f"Layer {layer}", _f_html(f"{service_path}/{layer}", token)))
        crumbs.append(("Preview", None))
        return crumbs
