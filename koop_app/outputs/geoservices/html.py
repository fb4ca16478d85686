"""``f=html``: the GeoServices answers as pages for people, in the spirit of ArcGIS Server's
Services Directory.

``HTMLRenderer`` renders the same answer that ``f=json`` gets through one template per kind
of resource: catalog (and folders), service, layers, layer, query (a form, with the result
under it once submitted) and error; any other answer falls back to a key/value page.

- Errors keep the ``/rest/`` convention: HTTP 200 with the error in the page, as ArcGIS Server
  answers ``f=html`` (the GeoServices middleware would turn a 4xx into JSON anyway). The page
  carries the code in ``data-error-code`` so that tests can still tell a crash (code 500).
- Everything from the data (names, values, descriptions) goes through Django's autoescaping.
- Links are paths from the request (its script prefix included), so that a browser keeps the
  scheme and host it used; absolute URLs, built with ``request.build_absolute_uri`` (which
  honours the forwarded scheme and host settings), only where a person copies them or another
  site opens them (ArcGIS Online's Map Viewer).
- A ``token`` given in the query string is carried by every link, as a person browsing a
  secured service with a token expects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

from koop_app.conf import koop_settings
from koop_app.outputs.geoservices.renderers import materialized

TEMPLATES = "koop_app/geoservices/"
MAP_VIEWER = "https://www.arcgis.com/apps/mapviewer/index.html"
DATE = "esriFieldTypeDate"
# Parameters that do not make a query page "submitted": without others, the page is the form.
NOT_QUESTIONS = frozenset({"f", "token"})
SERVICE_TYPE = re.compile(r"^[A-Za-z]+Server$")
# Rows a query page shows at most (a layer's maxRecordCount may be far larger); the JSON link
# has them all.
MAX_TABLE_ROWS = 1000


@dataclass(frozen=True)
class FormField:
    """One input of the query form."""

    name: str
    kind: str = "text"  # text | textarea | select | bool
    choices: tuple[str, ...] = ()
    default: str = ""
    help: str = ""


SPATIAL_RELATIONS = (
    "esriSpatialRelIntersects", "esriSpatialRelContains", "esriSpatialRelCrosses",
    "esriSpatialRelEnvelopeIntersects", "esriSpatialRelIndexIntersects",
    "esriSpatialRelOverlaps", "esriSpatialRelTouches", "esriSpatialRelWithin")
QUERY_FORM = (
    FormField("where", "textarea", help="a SQL-92 clause, e.g. 1=1 or name = 'A'"),
    FormField("objectIds", help="comma-separated"),
    FormField("time", help="epoch milliseconds: an instant, or start,end"),
    FormField("geometry", "textarea", help="x,y or xmin,ymin,xmax,ymax or Esri JSON"),
    FormField("geometryType", "select", ("esriGeometryEnvelope", "esriGeometryPoint",
                                         "esriGeometryMultipoint", "esriGeometryPolyline",
                                         "esriGeometryPolygon")),
    FormField("inSR", help="WKID of the geometry, e.g. 4326 or 102100"),
    FormField("spatialRel", "select", SPATIAL_RELATIONS),
    FormField("distance"),
    FormField("units", "select", ("esriSRUnit_Meter", "esriSRUnit_Kilometer",
                                  "esriSRUnit_Foot", "esriSRUnit_StatuteMile",
                                  "esriSRUnit_NauticalMile")),
    FormField("outFields", help="* or comma-separated field names"),
    FormField("returnGeometry", "bool", default="true"),
    FormField("outSR", help="WKID of the answer, e.g. 4326 or 102100"),
    FormField("geometryPrecision"),
    FormField("maxAllowableOffset"),
    FormField("orderByFields", help="e.g. name ASC, size DESC"),
    FormField("groupByFieldsForStatistics"),
    FormField("outStatistics", "textarea",
              help='[{"statisticType": "count", "onStatisticField": "OBJECTID", '
                   '"outStatisticFieldName": "n"}]'),
    FormField("havingClause"),
    FormField("resultOffset"),
    FormField("resultRecordCount"),
    FormField("returnDistinctValues", "bool", default="false"),
    FormField("returnIdsOnly", "bool", default="false"),
    FormField("returnCountOnly", "bool", default="false"),
    FormField("returnExtentOnly", "bool", default="false"),
    FormField("returnCentroid", "bool", default="false"),
)


def is_form_only(request: Request) -> bool:
    """An ``f=html`` query with no question yet: the page shows the empty form, runs nothing."""
    renderer = getattr(request, "accepted_renderer", None)
    if getattr(renderer, "format", None) != "html":
        return False
    return not set(getattr(request, "koop_params", {})) - NOT_QUESTIONS


class HTMLRenderer(BaseRenderer):
    """``f=html``: the answer as a page (see the module docstring)."""

    media_type = "text/html"
    format = "html"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None,
               renderer_context: dict[str, Any] | None = None) -> bytes:
        if data is None:  # 204, 304
            return b""
        context = renderer_context or {}
        request = context["request"]
        page = DirectoryPage(request, context.get("view"), _plain(data))
        return render_to_string(page.template, page.context()).encode()


def _plain(data: Any) -> Any:
    """The answer with its pre-encoded fragments (features, ids) and streamed parts read back
    as values."""
    return orjson.loads(orjson.dumps(materialized(data)))


@dataclass(frozen=True)
class Location:
    """What a path under ``rest/`` names: folders, service, layer and what follows."""

    root: tuple[str, ...]  # the segments up to ``services`` (or ``rest``)
    folders: tuple[str, ...] = ()
    service: str | None = None
    service_type: str | None = None
    layer: str | None = None
    tail: tuple[str, ...] = ()

    @classmethod
    def of(cls, path_info: str) -> Location:
        parts = tuple(part for part in path_info.split("/") if part)
        if "rest" not in parts:
            return cls(root=parts)
        rest = parts.index("rest") + 1
        if parts[rest:rest + 1] != ("services",):
            return cls(root=parts[:rest], tail=parts[rest:])
        root, after = parts[:rest + 1], parts[rest + 1:]
        for index in range(1, len(after)):
            if SERVICE_TYPE.match(after[index]):
                below = after[index + 1:]
                layer = below[0] if below and below[0].isdigit() else None
                return cls(root=root, folders=after[:index - 1], service=after[index - 1],
                           service_type=after[index], layer=layer,
                           tail=below[1:] if layer is not None else below)
        return cls(root=root, folders=after)

    def path(self, *, folders: int | None = None, service: bool = False, layer: bool = False,
             tail: int = 0) -> str:
        """The path (without script prefix) of this location, cut where asked."""
        parts = list(self.root) + list(self.folders[:folders])
        if service and self.service:
            parts += [self.service, self.service_type or ""]
        if layer and self.layer is not None:
            parts.append(self.layer)
        parts += list(self.tail[:tail])
        return "/" + "/".join(parts)


def _resolves(path_info: str) -> bool:
    try:
        resolve(path_info)
    except Resolver404:
        return False
    return True


def _reverse(name: str, **kwargs: Any) -> str | None:
    try:
        return reverse(name, kwargs=kwargs or None)
    except NoReverseMatch:
        return None


def map_viewer_link(url: str) -> str:
    """ArcGIS Online's Map Viewer opening the service or layer at ``url`` (a link only)."""
    return f"{MAP_VIEWER}?{urlencode({'url': url})}"


def site_links() -> dict[str, str | None]:
    """The header's links: each only when its route is mounted (outputs and the admin are
    optional in a project that reuses the app)."""
    catalog = _reverse("koop:geoservices-catalog")
    return {"home": _reverse("koop:landing"),
            "catalog": f"{catalog}?f=html" if catalog else None,
            "admin": _reverse("admin:index")}


class DirectoryPage:
    """The template and its context for one answer."""

    def __init__(self, request: Request, view: Any, data: Any) -> None:
        self.request = request
        self.django_request: HttpRequest = getattr(request, "_request", request)
        self.view = view
        self.data = data if isinstance(data, dict) else {"value": data}
        self.kind = page_kind(view, self.data)
        self.template = f"{TEMPLATES}{self.kind}.html"
        path = self.django_request.path
        path_info = self.django_request.path_info
        self.prefix = path[:len(path) - len(path_info)] if path.endswith(path_info) else ""
        self.location = Location.of(path_info)
        self.token = self.django_request.GET.get("token", "").strip()

    # --- links ---------------------------------------------------------------------------
    def link(self, path: str, f: str = "html") -> str:
        """``path`` (from the site root, no script prefix) as an ``f=html`` link."""
        params = {"f": f}
        if self.token:
            params["token"] = self.token
        return f"{self.prefix}{path}?{urlencode(params)}"

    def absolute(self, path: str) -> str:
        return self.django_request.build_absolute_uri(self.prefix + path)

    def json_link(self) -> str:
        params = self.django_request.GET.copy()
        params["f"] = "pjson"
        return f"{self.django_request.path}?{params.urlencode()}"

    def breadcrumbs(self) -> list[tuple[str, str | None]]:
        location = self.location
        crumbs: list[tuple[str, str | None]] = []
        landing = _reverse("koop:landing")
        if landing is not None:
            crumbs.append(("Home", landing))
        catalog = _reverse("koop:geoservices-catalog")
        if catalog is not None:
            crumbs.append(("Services", f"{catalog}?{urlencode(self._f_html())}"))
        for depth, folder in enumerate(location.folders, start=1):
            path = location.path(folders=depth)
            crumbs.append((folder, self.link(path) if _resolves(path) else None))
        if location.service:
            crumbs.append((f"{location.service} ({location.service_type})",
                           self.link(location.path(service=True))))
        if location.layer is not None:
            name = self.data.get("name") if self.kind == "layer" else None
            label = f"{name} ({location.layer})" if name else f"Layer {location.layer}"
            crumbs.append((label, self.link(location.path(service=True, layer=True))))
        for depth, part in enumerate(location.tail, start=1):
            crumbs.append((part, self.link(location.path(service=True, layer=True,
                                                         tail=depth))))
        if crumbs:  # the page itself
            crumbs[-1] = (crumbs[-1][0], None)
        return crumbs

    def _f_html(self) -> dict[str, str]:
        return {"f": "html", **({"token": self.token} if self.token else {})}

    def preview_link(self, layer: int | str | None = None) -> str | None:
        """Our map preview of this service (or of one layer), when the route names a dataset."""
        kwargs = getattr(self.view, "kwargs", None) or {}
        provider = kwargs.get("provider")
        if not provider:
            return None
        names = {key: kwargs[key] for key in ("host", "id") if kwargs.get(key)}
        if layer is None:
            found = _reverse(f"koop:{provider}:pages-preview-service", **names)
        else:
            found = _reverse(f"koop:{provider}:pages-preview-layer", layer=str(layer), **names)
        if found is None:
            return None
        return f"{found}?{urlencode({'token': self.token})}" if self.token else found

    # --- context -------------------------------------------------------------------------
    def context(self) -> dict[str, Any]:
        context: dict[str, Any] = {
            "data": self.data,
            "kind": self.kind,
            "breadcrumbs": self.breadcrumbs(),
            "json_link": self.json_link(),
            "title": self.title(),
            "site": site_links(),
        }
        extra = getattr(self, f"context_{self.kind}", None)
        if extra is not None:
            context.update(extra())
        return context

    def title(self) -> str:
        location = self.location
        if self.kind == "catalog":
            return "Folder: " + "/".join(location.folders) if location.folders else "Services"
        if self.kind == "layer":
            return f"{self.data.get('type', 'Layer')}: {self.data.get('name', '')} " \
                   f"(ID: {self.data.get('id', location.layer)})"
        if location.service:
            name = f"{location.service} ({location.service_type})"
            if location.layer is not None:
                name += f" / layer {location.layer}"
            return f"{name}{': ' + location.tail[-1] if location.tail else ''}"
        return "/".join(location.tail) or "GeoServices"

    def context_error(self) -> dict[str, Any]:
        error = self.data.get("error") or {}
        code = error.get("code")
        login = None
        if code in (498, 499, 403) and koop_settings.SESSION_ACCESS:
            admin_login = _reverse("admin:login")
            if admin_login is not None:
                login = f"{admin_login}?{urlencode({'next': self.django_request.get_full_path()})}"
        return {"error": error, "login_link": login}

    def context_catalog(self) -> dict[str, Any]:
        here = self.location.path(folders=len(self.location.folders))
        folders = [(name, self.link(f"{here}/{name}")) for name in self.data.get("folders", [])]
        services = []
        for service in self.data.get("services", []):
            url = str(service.get("url") or "")
            params = urlencode(self._f_html())
            services.append({"name": service.get("name", ""), "type": service.get("type", ""),
                             "link": f"{url}?{params}" if url else None})
        return {"folders": folders, "services": services}

    def context_service(self) -> dict[str, Any]:
        service_path = self.location.path(service=True)
        service_url = self.absolute(service_path)
        layers = [self._layer_entry(service_path, item) for item in self.data.get("layers", [])]
        tables = [self._layer_entry(service_path, item) for item in self.data.get("tables", [])]
        return {
            "service_name": self.location.service,
            "service_url": service_url,
            "layers": layers,
            "tables": tables,
            "all_layers_link": self.link(service_path + "/layers"),
            "preview_link": self.preview_link(),
            "map_viewer_link": map_viewer_link(service_url),
            "extent": self.data.get("fullExtent"),
        }

    def _layer_entry(self, service_path: str, item: dict[str, Any]) -> dict[str, Any]:
        layer_id = item.get("id")
        return {"id": layer_id, "name": item.get("name", ""),
                "geometry_type": item.get("geometryType"),
                "link": self.link(f"{service_path}/{layer_id}"),
                "preview_link": self.preview_link(layer_id) if item.get("geometryType")
                else None}

    def context_layers(self) -> dict[str, Any]:
        service_path = self.location.path(service=True)
        return {"entries": [self._layer_details(service_path, item)
                            for item in [*self.data.get("layers", []),
                                         *self.data.get("tables", [])]]}

    def context_layer(self) -> dict[str, Any]:
        return {"layer": self._layer_details(self.location.path(service=True), self.data)}

    def _layer_details(self, service_path: str, info: dict[str, Any]) -> dict[str, Any]:
        layer_id = info.get("id", self.location.layer)
        layer_path = f"{service_path}/{layer_id}"
        layer_url = self.absolute(layer_path)
        operations: list[tuple[str, str | None]] = [("Query", self.link(layer_path + "/query"))]
        if info.get("supportsQueryRelatedRecords"):
            operations.append(("Query Related Records",
                               self.link(layer_path + "/queryRelatedRecords")))
        operations.append(("Generate Renderer", None))  # needs a classificationDef: no form
        related = [{**item, "link": self.link(f"{service_path}/{item.get('relatedTableId')}")}
                   for item in info.get("relationships") or []]
        has_geometry = bool(info.get("geometryType"))
        return {
            "info": info,
            "link": self.link(layer_path),
            "url": layer_url,
            "copy_id": f"layer-url-{layer_id}",
            "fields": info.get("fields") or [],
            "extent": info.get("extent"),
            "operations": operations,
            "relationships": related,
            "preview_link": self.preview_link(layer_id) if has_geometry else None,
            "map_viewer_link": map_viewer_link(layer_url),
            "renderer": ((info.get("drawingInfo") or {}).get("renderer") or {}).get("type"),
        }

    def context_query(self) -> dict[str, Any]:
        params = getattr(self.request, "koop_params", {}) or {}
        submitted = bool(set(params) - NOT_QUESTIONS)
        fields = []
        for spec in QUERY_FORM:
            value = params.get(spec.name, spec.default) if submitted else spec.default
            if spec.kind == "bool":
                value = (value or spec.default).strip().lower()
            fields.append({"spec": spec, "value": value})
        formats = [renderer.format for renderer in self.view.get_renderers()] \
            if self.view is not None else ["html", "json", "pjson"]
        layer_path = self.location.path(service=True, layer=True)
        return {
            "form_fields": fields,
            "formats": sorted(formats, key=lambda name: (name != "html", name)),
            "chosen_format": "html",
            "token": self.token,
            "action": self.prefix + layer_path + "/query",
            "layer_link": self.link(layer_path),
            "submitted": submitted,
            "result": query_result(self.data) if submitted else None,
        }

    def context_generic(self) -> dict[str, Any]:
        rows = []
        for key, value in self.data.items():
            if isinstance(value, (dict, list)):
                rows.append((key, None, orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()))
            else:
                rows.append((key, value, None))
        return {"rows": rows}


def page_kind(view: Any, data: dict[str, Any]) -> str:
    """Which template shows ``data``: the view says so, else the answer's shape does."""
    explicit = getattr(view, "html_page", None)
    if explicit:
        return str(explicit)
    if getattr(view, "koop_method", None) == "query" or type(view).__name__ == "QueryView":
        return "query"
    if set(data) == {"error"}:
        return "error"
    if "services" in data and "folders" in data:
        return "catalog"
    if "layers" in data and "tables" in data:
        return "service" if "serviceDescription" in data else "layers"
    if data.get("type") in ("Feature Layer", "Table") and "fields" in data:
        return "layer"
    return "generic"


def query_result(data: dict[str, Any]) -> dict[str, Any]:
    """A query answer as the page shows it: an error, a count, ids, an extent or a table."""
    if "error" in data:
        return {"error": data["error"]}
    out: dict[str, Any] = {}
    if "count" in data:
        out["count"] = data["count"]
    if "objectIds" in data:
        out["object_ids"] = data.get("objectIds") or []
        out["object_id_field"] = data.get("objectIdFieldName", "")
    if "extent" in data:
        out["extent"] = data["extent"]
    if "features" in data:
        out.update(_feature_table(data))
    return out


def _feature_table(data: dict[str, Any]) -> dict[str, Any]:
    features = data.get("features") or []
    fields = data.get("fields") or []
    names = [field.get("name", "") for field in fields]
    if not names and features:
        names = list((features[0].get("attributes") or {}).keys())
    dates = {field.get("name") for field in fields if field.get("type") == DATE}
    with_geometry = any("geometry" in feature for feature in features)
    rows = []
    for feature in features[:MAX_TABLE_ROWS]:
        attributes = feature.get("attributes") or {}
        cells = [_cell(attributes.get(name), name in dates) for name in names]
        if with_geometry:
            cells.append(geometry_summary(feature.get("geometry")))
        rows.append(cells)
    return {"columns": names + (["geometry"] if with_geometry else []), "rows": rows,
            "feature_count": len(features), "shown": min(len(features), MAX_TABLE_ROWS),
            "exceeded": bool(data.get("exceededTransferLimit")),
            "geometry_type": data.get("geometryType")}


def _cell(value: Any, is_date: bool) -> str:
    if value is None:
        return "null"
    if is_date and isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def geometry_summary(geometry: Any) -> str:
    """A short description of an Esri JSON geometry (the JSON link has it whole)."""
    if not isinstance(geometry, dict):
        return "null"
    if "x" in geometry:
        return f"Point ({geometry.get('x')}, {geometry.get('y')})"
    if "points" in geometry:
        points = geometry.get("points") or []
        return f"Multipoint: {len(points)} point{'s' if len(points) != 1 else ''}"
    for key, name, unit in (("paths", "Polyline", "path"), ("rings", "Polygon", "ring")):
        if key in geometry:
            parts = geometry.get(key) or []
            vertices = sum(len(part) for part in parts)
            plural = "s" if len(parts) != 1 else ""
            return f"{name}: {len(parts)} {unit}{plural}, {vertices} vertices"
    return "geometry"
