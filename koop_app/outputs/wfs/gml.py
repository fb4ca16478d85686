"""Features as GML (3.2 or 3.1.1), encoded from the engine's Arrow page.

Attributes are turned into element text column by column with Arrow compute (escaping, dates,
nulls as ``xsi:nil``), and whole rows are joined by Arrow too; only the geometries are written
per feature, from numpy coordinate arrays (points in one pass over the page).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from koop_app.data.schema import DATE, DOUBLE, STRING
from koop_app.outputs.wfs.types import PREFIX, FeatureType
from koop_app.query.engine import WKB_COLUMN

GML32 = "http://www.opengis.net/gml/3.2"
GML311 = "http://www.opengis.net/gml"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
# Characters XML 1.0 forbids, even escaped: dropped from text values.
_FORBIDDEN = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x{fffe}\x{ffff}]"
BATCH_ROWS = 1000


@dataclass(frozen=True)
class GMLFormat:
    version: str  # "3.2" or "3.1.1"
    namespace: str
    mime: str

    @property
    def is_32(self) -> bool:
        return self.version == "3.2"


GML_32 = GMLFormat("3.2", GML32, "application/gml+xml; version=3.2")
GML_311 = GMLFormat("3.1.1", GML311, "text/xml; subtype=gml/3.1.1")


def escape(values: pa.Array) -> pa.Array:
    text = pc.replace_substring_regex(values, _FORBIDDEN, "")
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        text = pc.replace_substring(text, char, entity)
    return text


def _value_text(column: pa.ChunkedArray | pa.Array, kind: str) -> pa.Array:
    if kind == STRING:
        return escape(pc.cast(column, pa.string()))
    if kind == DATE:
        if not pa.types.is_timestamp(column.type):
            column = pc.cast(pc.cast(column, pa.int64()), pa.timestamp("ms", tz="UTC"))
        elif column.type.tz is None:
            column = pc.cast(column, pa.timestamp(column.type.unit, tz="UTC"))
        return pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")
    text = pc.cast(column, pa.string())
    if kind == DOUBLE:  # xs:double spells them INF, -INF, NaN
        text = pc.replace_substring_regex(text, "^inf$", "INF")
        text = pc.replace_substring_regex(text, "^-inf$", "-INF")
        text = pc.replace_substring_regex(text, "^-?nan$", "NaN")
    return text


def _property(column: pa.Array, element: str, kind: str) -> pa.Array:
    tag = f"{PREFIX}:{element}"
    text = pc.binary_join_element_wise(f"<{tag}>", _value_text(column, kind), f"</{tag}>", "")
    return pc.fill_null(text, f'<{tag} xsi:nil="true"/>')


class GeometryWriter:
    """Geometries as GML in the output CRS's axis order."""

    def __init__(self, gml: GMLFormat, geometry_type: str | None, srs_name: str,
                 swap: bool) -> None:
        self.gml, self.geometry_type, self.swap = gml, geometry_type, swap
        self.srs = srs_name.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")

    def texts(self, wkb: pa.Array, fids: list[str], element: str) -> list[str]:
        geometries = shapely.from_wkb(np.asarray(wkb.to_numpy(zero_copy_only=False),
                                                 dtype=object))
        if self.geometry_type == "esriGeometryPolygon":  # exteriors counter-clockwise (SFA)
            geometries = shapely.orient_polygons(geometries)
        tag = f"{PREFIX}:{element}"
        out = [""] * len(fids)
        kinds = shapely.get_type_id(geometries)
        points = np.flatnonzero(kinds == 0)
        if len(points) and self.geometry_type == "esriGeometryPoint":
            coords = shapely.get_coordinates(geometries[points])
            if self.swap:
                coords = coords[:, ::-1]
            first = list(map(repr, coords[:, 0].tolist()))
            second = list(map(repr, coords[:, 1].tolist()))
            srs = self.srs
            for k, i in enumerate(points.tolist()):
                out[i] = (f'<{tag}><gml:Point gml:id="{fids[i]}.g" srsName="{srs}"><gml:pos>'
                          f"{first[k]} {second[k]}</gml:pos></gml:Point></{tag}>")
            rest = np.flatnonzero((kinds != 0) & (kinds >= 0))
        else:
            rest = np.flatnonzero(kinds >= 0)
        for i in rest.tolist():
            geometry = geometries[i]
            if geometry is None or shapely.is_empty(geometry):
                continue
            out[i] = f"<{tag}>{self.geometry(geometry, fids[i] + '.g', True)}</{tag}>"
        return out

    def _pos_list(self, geometry: shapely.Geometry) -> str:
        coords = shapely.get_coordinates(geometry)
        if self.swap:
            coords = coords[:, ::-1]
        return " ".join(map(repr, coords.ravel().tolist()))

    def geometry(self, geometry: shapely.Geometry, gid: str, top: bool) -> str:
        srs = f' srsName="{self.srs}"' if top else ""
        head = f'gml:id="{gid}"{srs}'
        kind = geometry.geom_type
        layer = self.geometry_type
        if kind == "Point" and layer != "esriGeometryMultipoint":
            return f"<gml:Point {head}><gml:pos>{self._pos_list(geometry)}</gml:pos></gml:Point>"
        if kind in ("Point", "MultiPoint"):
            members = "".join(
                f"<gml:pointMember>{self.geometry(p, f'{gid}.{n}', False)}</gml:pointMember>"
                for n, p in enumerate(shapely.get_parts(geometry)))
            return f"<gml:MultiPoint {head}>{members}</gml:MultiPoint>"
        if kind in ("LineString", "MultiLineString", "LinearRing"):
            members = "".join(
                f'<gml:curveMember><gml:LineString gml:id="{gid}.{n}"><gml:posList>'
                f"{self._pos_list(line)}</gml:posList></gml:LineString></gml:curveMember>"
                for n, line in enumerate(shapely.get_parts(geometry)))
            return f"<gml:MultiCurve {head}>{members}</gml:MultiCurve>"
        if kind in ("Polygon", "MultiPolygon"):
            members = "".join(
                f"<gml:surfaceMember>{self._polygon(polygon, f'{gid}.{n}')}</gml:surfaceMember>"
                for n, polygon in enumerate(shapely.get_parts(geometry)))
            return f"<gml:MultiSurface {head}>{members}</gml:MultiSurface>"
        members = "".join(  # a collection: each part as it is
            f"<gml:geometryMember>{self.geometry(part, f'{gid}.{n}', False)}"
            "</gml:geometryMember>" for n, part in enumerate(shapely.get_parts(geometry))
            if not part.is_empty)
        return f"<gml:MultiGeometry {head}>{members}</gml:MultiGeometry>"

    def _polygon(self, polygon: shapely.Geometry, gid: str) -> str:
        rings = [f"<gml:exterior><gml:LinearRing><gml:posList>"
                 f"{self._pos_list(polygon.exterior)}</gml:posList></gml:LinearRing>"
                 "</gml:exterior>"]
        rings += [f"<gml:interior><gml:LinearRing><gml:posList>{self._pos_list(ring)}"
                  "</gml:posList></gml:LinearRing></gml:interior>" for ring in polygon.interiors]
        return f'<gml:Polygon gml:id="{gid}">{"".join(rings)}</gml:Polygon>'


def members(table: pa.Table, feature_type: FeatureType, writer: GeometryWriter,
            member: str, *, geometry: bool) -> Iterator[bytes]:
    """The page's features, each in a ``member`` element, in chunks of BATCH_ROWS."""
    oid = feature_type.table.schema.object_id_field
    tag = f"{PREFIX}:{feature_type.name}"
    present = set(table.column_names)
    properties = [(e, f) for e, f in feature_type.properties if f.name in present]
    for start in range(0, table.num_rows, BATCH_ROWS):
        batch = table.slice(start, BATCH_ROWS)

        def column(name: str, batch: pa.Table = batch) -> pa.Array:
            return batch.column(name).combine_chunks()

        fids = pc.binary_join_element_wise(f"{feature_type.name}.",
                                           pc.cast(column(oid), pa.string()), "")
        parts: list[pa.Array | str] = [
            pc.binary_join_element_wise(f'<{member}><{tag} gml:id="', fids, '">', "")]
        parts += [_property(column(f.name), e, f.type) for e, f in properties]
        if geometry and feature_type.geometry_property and WKB_COLUMN in present:
            texts = writer.texts(column(WKB_COLUMN),
                                 fids.to_pylist(), feature_type.geometry_property)
            parts.append(pa.array(texts, pa.string()))
        parts.append(f"</{tag}></{member}>")
        rows = pc.binary_join_element_wise(*parts, "")
        joined = pc.binary_join(pa.ListArray.from_arrays([0, len(rows)], rows), "")
        yield joined[0].as_buffer().to_pybytes()
