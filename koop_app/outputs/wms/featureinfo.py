"""GetFeatureInfo answers: the features found at a pixel, per queried layer, in each format."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any
from xml.etree import ElementTree as ET

import orjson
import shapely

from koop_app.data.hot import LayerTable
from koop_app.data.schema import DATE
from koop_app.query import Result
from koop_app.query.engine import WKB_COLUMN, page_arrow

Writer = Callable[[list["LayerAnswer"]], tuple[bytes, str]]


@dataclass(frozen=True)
class LayerAnswer:
    table: LayerTable
    name: str
    result: Result


def _text(value: Any, is_date: bool) -> str:
    if value is None:
        return "null"
    if is_date and isinstance(value, (int, float)):
        value = dt.datetime.fromtimestamp(value / 1000, dt.UTC)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _rows(answer: LayerAnswer) -> list[list[tuple[str, str]]]:
    """Each feature's (field, value as text) pairs, in the layer's field order."""
    page = answer.result.page
    if page is None:
        return []
    table, _ = page_arrow(page, points_as_xy=False)
    fields = [f for f in page.fields if f.name in table.column_names]
    columns = {f.name: table.column(f.name).to_pylist() for f in fields}
    return [[(f.alias or f.name, _text(columns[f.name][i], f.type == DATE)) for f in fields]
            for i in range(table.num_rows)]


def plain(answers: list[LayerAnswer]) -> tuple[bytes, str]:
    lines = []
    for answer in answers:
        rows = _rows(answer)
        lines.append(f"Layer '{answer.table.layer_id}' ({answer.name}): {len(rows)} "
                     f"feature{'s' if len(rows) != 1 else ''}")
        for number, row in enumerate(rows, 1):
            lines.append(f"  Feature {number}:")
            lines.extend(f"    {name} = {value}" for name, value in row)
    if not answers or all(not _rows(a) for a in answers):
        lines.append("No features were found.")
    return ("\n".join(lines) + "\n").encode(), "text/plain; charset=utf-8"


def html(answers: list[LayerAnswer]) -> tuple[bytes, str]:
    parts = ['<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Feature info</title>'
             '</head><body>']
    for answer in answers:
        rows = _rows(answer)
        parts.append(f'<table class="featureInfo" data-layer="{answer.table.layer_id}">'
                     f"<caption>{escape(answer.name)}</caption>")
        if rows:
            parts.append("<tr>" + "".join(f"<th>{escape(n)}</th>" for n, _ in rows[0])
                         + "</tr>")
            for row in rows:
                parts.append("<tr>" + "".join(f"<td>{escape(v)}</td>" for _, v in row)
                             + "</tr>")
        else:
            parts.append("<tr><td>No features were found.</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts).encode(), "text/html; charset=utf-8"


def geojson(answers: list[LayerAnswer]) -> tuple[bytes, str]:
    """A FeatureCollection (RFC 7946: WGS 84 longitude/latitude) of every layer's features,
    each with a ``layer`` member naming its layer; dates in epoch milliseconds, as the
    FeatureServer's GeoJSON has them."""
    features: list[Any] = []
    for answer in answers:
        page = answer.result.page
        if page is None:
            continue
        table, _ = page_arrow(page, points_as_xy=False)
        names = [f.name for f in page.fields if f.name in table.column_names]
        properties = table.select(names).to_pylist()
        geometries: list[Any] = [None] * table.num_rows
        if WKB_COLUMN in table.column_names:
            shapes = shapely.from_wkb(table.column(WKB_COLUMN).to_numpy(zero_copy_only=False))
            geometries = [orjson.Fragment(text) if text is not None else None
                          for text in shapely.to_geojson(shapes).tolist()]
        oid = answer.table.schema.object_id_field
        for props, geometry in zip(properties, geometries, strict=True):
            features.append({"type": "Feature", "id": props.get(oid), "properties": props,
                             "geometry": geometry,
                             "layer": {"id": answer.table.layer_id, "name": answer.name}})
    body = orjson.dumps({"type": "FeatureCollection", "features": features})
    return body, "application/geo+json"


def xml(answers: list[LayerAnswer]) -> tuple[bytes, str]:
    """ArcGIS Server's shape: FeatureInfoResponse / FeatureInfoCollection / FeatureInfo /
    Field (FieldName, FieldValue)."""
    root = ET.Element("FeatureInfoResponse")
    for answer in answers:
        collection = ET.SubElement(root, "FeatureInfoCollection",
                                   layername=answer.name, layerid=str(answer.table.layer_id))
        for row in _rows(answer):
            info = ET.SubElement(collection, "FeatureInfo")
            for name, value in row:
                field = ET.SubElement(info, "Field")
                ET.SubElement(field, "FieldName").text = name
                ET.SubElement(field, "FieldValue").text = value
    return ET.tostring(root, encoding="utf-8", xml_declaration=True), "text/xml; charset=utf-8"


WRITERS: dict[str, Writer] = {
    "text/plain": plain,
    "text/html": html,
    "application/json": geojson,
    "application/geo+json": geojson,
    "application/geojson": geojson,
    "text/xml": xml,
    "application/vnd.ogc.gml": xml,
}
