"""The WMS endpoint: GetCapabilities, GetMap, GetFeatureInfo and GetLegendGraphic.

Parameter names are read without case (OGC 06-042, 6.8.1), values as given. Each map layer is
read through the engine with GeoServices parameters (the map's box as ``geometry`` in the
request's CRS, ``outSR`` that CRS, ``resultType=tile`` pages, ``maxAllowableOffset`` one pixel)
so the FeatureServer's access rules, record limits and pass-through filtering apply as they are.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
import shapely
from django.http import HttpRequest, HttpResponse

from koop_app.data import LayerSet
from koop_app.data.hot import LayerTable
from koop_app.errors import InvalidParameterError, KoopError
from koop_app.models import Dataset
from koop_app.outputs.geoservices.serializers import layer_name
from koop_app.outputs.serving import (
    answering_errors,
    cacheable,
    find_dataset,
    open_layers,
    request_params,
    run_query,
)
from koop_app.outputs.wms import capabilities, featureinfo, legend, render
from koop_app.outputs.wms.crs import MapCRS, parse_bbox, parse_crs
from koop_app.outputs.wms.errors import WMSError, error_response, invalid, missing
from koop_app.outputs.wms.styles import Style, find_style, layer_styles
from koop_app.query.engine import WKB_COLUMN, X_COLUMN, Y_COLUMN, page_arrow
from koop_app.query.ogc_filter import parse_cql2_text, to_geoservices

VERSIONS = ("1.3.0", "1.1.1")
# The most features drawn per layer in one map (pages of the layer's tile record limit); past
# it the map shows the first ones (X-Koop-Features-Truncated says so).
MAX_MAP_FEATURES = 250_000
MAX_FEATURE_COUNT = 1000
# GetFeatureInfo looks this many pixels around the clicked one (points: their marker's radius).
PICK_TOLERANCE_PX = 3
GEOMETRY_PARAMETERS = ("geometry", "inSR", "geometryType", "spatialRel")


@dataclass(frozen=True)
class MapRequest:
    """The map part of GetMap and GetFeatureInfo, checked."""

    version: str
    crs: MapCRS
    frame: render.Frame
    tables: tuple[tuple[LayerTable, Style], ...]
    filters: Mapping[str, str]


def _version(params: Mapping[str, str], negotiate: bool = False) -> str:
    asked = (params.get("VERSION") or params.get("WMTVER") or "").strip()
    if asked.startswith("1.1"):
        return "1.1.1"
    if negotiate and asked and asked < "1.1":
        return "1.1.1"
    return "1.3.0"


def _render_error(request: HttpRequest, error: KoopError) -> HttpResponse:
    return error_response(request, error)


@answering_errors(_render_error)
def wms_server(request: HttpRequest, provider: str, host: str | None = None,
               id: str | None = None) -> Any:
    params = {key.upper(): value for key, value in request_params(request).items()}
    service = (params.get("SERVICE") or "WMS").strip()
    if service.upper() != "WMS":
        raise invalid("SERVICE", f"{service!r} is not served here; this is a WMS")
    operation = (params.get("REQUEST") or "").strip()
    if not operation:
        raise missing("REQUEST")
    dataset = find_dataset(provider, host, id)
    handler = OPERATIONS.get(operation.lower())
    if handler is None:
        raise WMSError("OperationNotSupported", f"{operation[:60]!r} is not a WMS operation "
                       "of this service.", "REQUEST")
    return handler(request, dataset, params)


# --- GetCapabilities -------------------------------------------------------------------------

def get_capabilities(request: HttpRequest, dataset: Dataset, params: dict[str, str]) -> Any:
    version = _version(params, negotiate=True)
    fmt = (params.get("FORMAT") or "").strip().lower()
    if fmt and fmt not in ("text/xml", "application/xml", "application/vnd.ogc.wms_xml"):
        raise WMSError("InvalidFormat", f"{fmt[:60]!r}: capabilities are XML.", "FORMAT")
    layers = open_layers(request, dataset)
    body = capabilities.document(
        layers, version=version, url=request.build_absolute_uri(request.path),
        title=_title(dataset), abstract=dataset.description or _first_description(layers),
        root_name=_root_name(dataset))
    content_type = "text/xml" if version == "1.3.0" else "application/vnd.ogc.wms_xml"
    response = HttpResponse(body, content_type=f"{content_type}; charset=utf-8")
    return cacheable(request, response, dataset, layers, {"version": version,
                                                          "url": request.build_absolute_uri()})


def _title(dataset: Dataset) -> str:
    return dataset.name or dataset.dataset_id or dataset.provider.name


def _root_name(dataset: Dataset) -> str:
    return dataset.dataset_id or dataset.provider.name


def _first_description(layers: LayerSet) -> str:
    return next((str(t.schema.metadata.get("description")) for t in layers.layers
                 if t.schema.metadata.get("description")), "")


# --- the map part: layers, styles, CRS, box, size --------------------------------------------

def _layer_tables(layers: LayerSet, dataset: Dataset, name: str, parameter: str
                  ) -> list[LayerTable]:
    wanted = name.strip()
    mapped = capabilities.map_tables(layers)
    if wanted.isascii() and wanted.isdigit():
        found = [t for t in mapped if str(t.layer_id) == str(int(wanted))]
        if found:
            return found
    if wanted.lower() == _root_name(dataset).lower() and mapped:
        return mapped
    found = [t for t in mapped if layer_name(t, "").lower() == wanted.lower()]
    if found:
        return found[:1]
    if parameter == "QUERY_LAYERS" and any(
            str(t.layer_id) == wanted or layer_name(t, "").lower() == wanted.lower()
            for t in layers.layers):
        raise WMSError("LayerNotQueryable", f"{wanted[:60]!r} is a table: it has no map.",
                       parameter)
    raise WMSError("LayerNotDefined", f"No layer {wanted[:60]!r} in this WMS.", parameter)


def _size(params: Mapping[str, str], name: str) -> int:
    text = (params.get(name) or "").strip()
    if not text:
        raise missing(name)
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise invalid(name, "expected a positive integer")
    value = int(text)
    if not 1 <= value <= capabilities.MAX_SIZE:
        raise invalid(name, f"must be between 1 and {capabilities.MAX_SIZE}")
    return value


def map_request(request: HttpRequest, dataset: Dataset, params: Mapping[str, str],
                layers: LayerSet, *, layer_parameter: str = "LAYERS") -> MapRequest:
    version = _version(params)
    crs_parameter = "CRS" if version == "1.3.0" else "SRS"
    code = (params.get(crs_parameter) or params.get("CRS") or params.get("SRS") or "").strip()
    if not code:
        raise missing(crs_parameter)
    crs = parse_crs(code, version, crs_parameter)
    bbox_text = (params.get("BBOX") or "").strip()
    if not bbox_text:
        raise missing("BBOX")
    bbox = parse_bbox(bbox_text, crs)
    frame = render.Frame(bbox, _size(params, "WIDTH"), _size(params, "HEIGHT"))
    names = [n for n in (params.get(layer_parameter) or "").split(",")]
    if not any(n.strip() for n in names):
        raise missing(layer_parameter)
    style_text = params.get("STYLES")
    if style_text is None and version == "1.3.0" and layer_parameter == "LAYERS":
        raise missing("STYLES")
    style_names = (style_text or "").split(",")
    if style_text and style_text.strip() and len(style_names) != len(names):
        raise invalid("STYLES", "give one style per layer (or none)")
    chosen: list[tuple[LayerTable, Style]] = []
    for i, name in enumerate(names):
        style_name = style_names[i] if i < len(style_names) else ""
        for table in _layer_tables(layers, dataset, name, layer_parameter):
            style = find_style(table, style_name)
            if style is None:
                raise WMSError("StyleNotDefined", f"Layer {name[:60]!r} has no style "
                               f"{style_name[:60]!r}.", "STYLES")
            chosen.append((table, style))
    return MapRequest(version, crs, frame, tuple(chosen), _filters(params))


def _filters(params: Mapping[str, str]) -> dict[str, str]:
    """The vendor filters: ``WHERE`` (GeoServices SQL), ``CQL_FILTER`` (CQL2 text) and
    ``TIME`` (ISO 8601 instant or start/end, on layers with time info)."""
    out: dict[str, str] = {}
    where = (params.get("WHERE") or "").strip()
    if where:
        out["where"] = where
    cql = (params.get("CQL_FILTER") or "").strip()
    if cql:
        out["cql"] = cql
    time = (params.get("TIME") or "").strip()
    if time:
        out["time"] = _time(time)
    return out


def _instant(text: str) -> int | None:
    if text in ("", ".."):  # an open end
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise invalid("TIME", f"{text[:40]!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def _time(text: str) -> str:
    parts = text.split("/")
    if len(parts) > 3 or "," in text:
        raise invalid("TIME", "expected an instant or start/end")
    if len(parts) == 1:
        value = _instant(parts[0])
        return f"{value},{value}"
    start, end = _instant(parts[0]), _instant(parts[1])
    if start is not None and end is not None and start > end:
        raise invalid("TIME", "the start is after the end")
    return f"{'null' if start is None else start},{'null' if end is None else end}"


def _layer_filter(table: LayerTable, filters: Mapping[str, str]) -> dict[str, str]:
    """The GeoServices ``where``/``time`` of the vendor filters, for one layer."""
    out: dict[str, str] = {}
    clauses = []
    if filters.get("where"):
        clauses.append(filters["where"])
    if filters.get("cql"):
        try:
            converted = to_geoservices(parse_cql2_text(filters["cql"]), table.schema,
                                       parameter="CQL_FILTER")
        except InvalidParameterError as exc:
            raise invalid("CQL_FILTER", "; ".join(exc.details) or exc.message) from None
        if any(k in converted for k in GEOMETRY_PARAMETERS):
            raise invalid("CQL_FILTER", "spatial predicates are not taken here: the map's BBOX "
                          "is its spatial filter")
        if converted.get("where"):
            clauses.append(converted["where"])
    if clauses:
        out["where"] = " AND ".join(f"({c})" for c in clauses)
    if filters.get("time"):
        if not isinstance(table.schema.metadata.get("timeInfo"), dict):
            raise invalid("TIME", f"layer {table.layer_id} has no time")
        out["time"] = filters["time"]
    return out


# --- reading features ------------------------------------------------------------------------

def _run(request: HttpRequest, dataset: Dataset, layers: LayerSet, table: LayerTable,
         params: dict[str, str]) -> tuple[Any, LayerTable]:
    if layers.pass_through:  # the source filters each question itself
        table = open_layers(request, dataset, layer=table.layer_id,
                            params=params).layer(table.layer_id)
    try:
        return run_query(dataset, table, params), table
    except InvalidParameterError as exc:
        if exc.parameter in GEOMETRY_PARAMETERS:
            raise invalid("BBOX", "; ".join(exc.details) or "cannot be used") from None
        if exc.parameter in ("where", "time", "CQL_FILTER"):
            raise WMSError("InvalidParameterValue", "; ".join(exc.details) or exc.message,
                           {"where": "WHERE", "time": "TIME"}.get(exc.parameter,
                                                                  exc.parameter)) from None
        raise


def map_features(request: HttpRequest, dataset: Dataset, layers: LayerSet, table: LayerTable,
                 style: Style, mapped: MapRequest) -> tuple[np.ndarray, pa.Table, bool]:
    """The features of ``table`` in the map (geometries in its CRS, the style's columns), and
    whether the map's cap cut them."""
    frame = mapped.frame
    reach = max([s.size / 2 + s.stroke_width for s in style.symbols] + [2.0])
    dx = reach * (frame.bbox[2] - frame.bbox[0]) / frame.width
    dy = reach * (frame.bbox[3] - frame.bbox[1]) / frame.height
    minx, miny, maxx, maxy = frame.bbox
    wkid = mapped.crs.wkid
    base = {
        "geometry": f"{minx - dx!r},{miny - dy!r},{maxx + dx!r},{maxy + dy!r}",
        "geometryType": "esriGeometryEnvelope", "inSR": wkid, "outSR": wkid,
        "spatialRel": "esriSpatialRelEnvelopeIntersects", "resultType": "tile",
        # Pages of five times the tile limit (the most ArcGIS clients may ask for): fewer
        # statements over the map's rows, each read once.
        "maxRecordCountFactor": "5",
        "returnExceededLimitFeatures": "true", "returnGeometry": "true",
        "outFields": ",".join(style.fields) or table.schema.object_id_field,
        "maxAllowableOffset": repr(frame.pixel_size),
        **_layer_filter(table, mapped.filters),
    }
    # Points come as x/y columns: no WKB to write and parse again (a third of a dense map).
    as_xy = table.schema.geometry_type == "esriGeometryPoint"
    pages: list[pa.Table] = []
    offset, truncated = 0, False
    while True:
        (_, result), table = _run(request, dataset, layers, table,
                                  {**base, "resultOffset": str(offset)})
        if result.page is None:
            break
        rows, more = page_arrow(result.page, points_as_xy=as_xy)
        pages.append(rows)
        offset += rows.num_rows
        if not (more or result.exceeded_transfer_limit) or rows.num_rows == 0:
            break
        if offset >= MAX_MAP_FEATURES:
            truncated = True
            break
    if not pages:
        return np.array([], dtype=object), pa.table({}), False
    rows = pa.concat_tables(pages) if len(pages) > 1 else pages[0]
    if as_xy and X_COLUMN in rows.column_names:
        x = rows.column(X_COLUMN).to_numpy(zero_copy_only=False).astype(float)
        y = rows.column(Y_COLUMN).to_numpy(zero_copy_only=False).astype(float)
        geoms = shapely.points(x, y)
        geoms[np.isnan(x) | np.isnan(y)] = None  # null geometries: nothing to draw
        return geoms, rows, truncated
    if WKB_COLUMN not in rows.column_names:
        return np.array([], dtype=object), rows, truncated
    geoms = shapely.from_wkb(rows.column(WKB_COLUMN).to_numpy(zero_copy_only=False))
    return geoms, rows, truncated


# --- GetMap ----------------------------------------------------------------------------------

MAP_FORMATS = {"image/png": "image/png", "png": "image/png", "image/png8": "image/png",
               "image/jpeg": "image/jpeg", "image/jpg": "image/jpeg", "jpeg": "image/jpeg",
               "jpg": "image/jpeg"}


def _format(params: Mapping[str, str]) -> str:
    text = (params.get("FORMAT") or "").strip()
    if not text:
        raise missing("FORMAT")
    found = MAP_FORMATS.get(text.split(";")[0].strip().lower())
    if found is None:
        raise WMSError("InvalidFormat", f"{text[:60]!r} is not a map format here: "
                       "image/png or image/jpeg.", "FORMAT")
    return found


def _background(params: Mapping[str, str]) -> tuple[int, int, int]:
    text = (params.get("BGCOLOR") or "").strip()
    if not text:
        return 255, 255, 255
    digits = text[2:] if text.lower().startswith("0x") else text.lstrip("#")
    if len(digits) != 6 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise invalid("BGCOLOR", "expected 0xRRGGBB")
    value = int(digits, 16)
    return value >> 16, (value >> 8) & 255, value & 255


def _transparent(params: Mapping[str, str]) -> bool:
    text = (params.get("TRANSPARENT") or "FALSE").strip().upper()
    if text not in ("TRUE", "FALSE"):
        raise invalid("TRANSPARENT", "expected TRUE or FALSE")
    return text == "TRUE"


def _exceptions(params: Mapping[str, str]) -> str:
    text = (params.get("EXCEPTIONS") or "").strip().lower()
    if "inimage" in text:
        return "inimage"
    if "blank" in text:
        return "blank"
    return "xml"


def get_map(request: HttpRequest, dataset: Dataset, params: dict[str, str]) -> Any:
    image_format = _format(params)
    transparent = _transparent(params)
    background = _background(params)
    mode = _exceptions(params)
    try:
        layers = open_layers(request, dataset)
        mapped = map_request(request, dataset, params, layers)
        image = render.blank(mapped.frame, transparent, background)
        truncated = False
        for table, style in mapped.tables:
            geoms, rows, cut = map_features(request, dataset, layers, table, style, mapped)
            truncated = truncated or cut
            if len(geoms):
                render.draw_layer(image, geoms, style.classify(rows), style.symbols,
                                  mapped.frame)
    except KoopError as error:
        if mode == "xml" or not isinstance(error, WMSError | InvalidParameterError):
            raise
        frame = _error_frame(params)
        if frame is None:
            raise
        picture = (render.message_image(frame, error.message, transparent, background)
                   if mode == "inimage" else render.blank(frame, transparent, background))
        return HttpResponse(render.encode(picture, image_format, transparent, background),
                            content_type=image_format)
    response = HttpResponse(render.encode(image, image_format, transparent, background),
                            content_type=image_format)
    if truncated:
        response["X-Koop-Features-Truncated"] = "true"
    return cacheable(request, response, dataset, layers, {k.lower(): v for k, v in
                                                          sorted(params.items())})


def _error_frame(params: Mapping[str, str]) -> render.Frame | None:
    try:
        return render.Frame((0.0, 0.0, 1.0, 1.0), _size(params, "WIDTH"),
                            _size(params, "HEIGHT"))
    except WMSError:
        return None


# --- GetFeatureInfo --------------------------------------------------------------------------

def _pixel(params: Mapping[str, str], name: str, limit: int) -> int:
    text = (params.get(name) or "").strip()
    if not text:
        raise missing(name)
    try:
        value = float(text)
    except ValueError:
        raise WMSError("InvalidPoint", f"{name}={text[:20]!r} is not a pixel.", name) from None
    if not math.isfinite(value) or not 0 <= value < limit or value != int(value):
        raise WMSError("InvalidPoint", f"{name}={text[:20]!r} is not a pixel of the map.", name)
    return int(value)


def get_feature_info(request: HttpRequest, dataset: Dataset, params: dict[str, str]) -> Any:
    info_format = (params.get("INFO_FORMAT") or "text/plain").strip()
    writer = featureinfo.WRITERS.get(info_format.split(";")[0].strip().lower())
    if writer is None:
        raise WMSError("InvalidFormat", f"{info_format[:60]!r} is not an INFO_FORMAT here.",
                       "INFO_FORMAT")
    count_text = (params.get("FEATURE_COUNT") or "1").strip()
    if not count_text.isascii() or not count_text.isdigit() or int(count_text[:6]) < 1:
        raise invalid("FEATURE_COUNT", "expected a positive integer")
    feature_count = min(int(count_text[:6]), MAX_FEATURE_COUNT)
    layers = open_layers(request, dataset)
    params = {**params, "STYLES": params.get("STYLES") or ""}
    mapped = map_request(request, dataset, params, layers)
    queried = map_request(request, dataset, {**params, "STYLES": ""}, layers,
                          layer_parameter="QUERY_LAYERS")
    version = mapped.version
    i = _pixel(params, "I" if version == "1.3.0" else "X", mapped.frame.width)
    j = _pixel(params, "J" if version == "1.3.0" else "Y", mapped.frame.height)
    frame = mapped.frame
    minx, miny, maxx, maxy = frame.bbox
    x = minx + (i + 0.5) * (maxx - minx) / frame.width
    y = maxy - (j + 0.5) * (maxy - miny) / frame.height
    styles = {table.layer_id: style for table, style in mapped.tables}
    answers: list[featureinfo.LayerAnswer] = []
    seen: set[int] = set()
    for table, default_style in queried.tables:
        if table.layer_id in seen:
            continue
        seen.add(table.layer_id)
        style = styles.get(table.layer_id, default_style)
        reach = PICK_TOLERANCE_PX
        if table.schema.geometry_type in ("esriGeometryPoint", "esriGeometryMultipoint"):
            reach = max(reach, max(s.size / 2 + s.stroke_width for s in style.symbols))
        dx = reach * (maxx - minx) / frame.width
        dy = reach * (maxy - miny) / frame.height
        oid = table.schema.object_id_field
        query_params = {
            "geometry": f"{x - dx!r},{y - dy!r},{x + dx!r},{y + dy!r}",
            "geometryType": "esriGeometryEnvelope", "inSR": mapped.crs.wkid,
            "spatialRel": "esriSpatialRelIntersects", "outFields": "*",
            "returnGeometry": "true", "resultRecordCount": str(feature_count),
            "orderByFields": f"{oid} DESC", **_layer_filter(table, mapped.filters),
        }
        (_, result), table = _run(request, dataset, layers, table, query_params)
        answers.append(featureinfo.LayerAnswer(table, layer_name(table, _title(dataset)),
                                               result))
    body, content_type = writer(answers)
    response = HttpResponse(body, content_type=content_type)
    return cacheable(request, response, dataset, layers, {k.lower(): v for k, v in
                                                          sorted(params.items())})


# --- GetLegendGraphic ------------------------------------------------------------------------

def get_legend_graphic(request: HttpRequest, dataset: Dataset, params: dict[str, str]) -> Any:
    fmt = (params.get("FORMAT") or "image/png").strip().lower()
    if fmt != "image/png":
        raise WMSError("InvalidFormat", f"{fmt[:60]!r}: legends are image/png.", "FORMAT")
    name = (params.get("LAYER") or "").strip()
    if not name:
        raise missing("LAYER")
    layers = open_layers(request, dataset)
    entries = []
    for table in _layer_tables(layers, dataset, name, "LAYER"):
        style = find_style(table, params.get("STYLE") or "")
        if style is None:
            raise WMSError("StyleNotDefined", f"Layer {name[:60]!r} has no style "
                           f"{(params.get('STYLE') or '')[:60]!r}.", "STYLE")
        entries.append((table, replace(style, title=layer_name(table, _title(dataset)))))
    response = HttpResponse(legend.legend_png(entries), content_type="image/png")
    return cacheable(request, response, dataset, layers, {k.lower(): v for k, v in
                                                          sorted(params.items())})


OPERATIONS = {
    "getcapabilities": get_capabilities,
    "capabilities": get_capabilities,  # WMS 1.0's name, still sent by some clients
    "getmap": get_map,
    "map": get_map,
    "getfeatureinfo": get_feature_info,
    "getlegendgraphic": get_legend_graphic,
}

__all__ = ["wms_server", "layer_styles"]
