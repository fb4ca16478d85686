"""Map CRSs of WMS requests: codes, axis order, and the box of a map in x/y.

WMS 1.3.0 (OGC 06-042, 6.7.3) orders BBOX by the CRS's own axes: EPSG:4326 is latitude first,
CRS:84 longitude first, EPSG:3857 easting first. WMS 1.1.1 is always x (east), y (north). The
engine works in x/y (PROJ's "always_xy"), so a request's box is turned to x/y here once.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pyproj
from pyproj.exceptions import CRSError

from koop_app.outputs.wms.errors import WMSError, invalid
from koop_app.query.sr import MERCATOR_MAX_LAT, WGS84, SpatialRef, from_wkid, transformer

# Listed in the capabilities of every layer; GetMap takes any horizontal EPSG code PROJ knows.
ADVERTISED = ("CRS:84", "EPSG:4326", "EPSG:3857", "EPSG:900913", "EPSG:4258", "EPSG:3395",
              "EPSG:3035", "EPSG:3034", "EPSG:27700", "EPSG:2154", "EPSG:25832",
              "EPSG:25833", "EPSG:32632", "EPSG:32633", "EPSG:4269", "EPSG:3978")
# No reference has coordinates this large; a larger box only overflows projections.
MAX_COORDINATE = 1e15


@dataclass(frozen=True)
class MapCRS:
    code: str  # as the client wrote it, upper case ("EPSG:4326", "CRS:84")
    sr: SpatialRef  # what the engine takes as inSR/outSR
    north_first: bool  # the CRS's first axis points north (lat/lon, northing/easting)

    @property
    def wkid(self) -> str:
        return str(self.sr.wkid)

    @property
    def is_geographic(self) -> bool:
        return self.sr.is_geographic


@functools.lru_cache(maxsize=256)
def _north_first(crs: str) -> bool:
    try:
        axes = pyproj.CRS.from_user_input(crs).axis_info
    except CRSError:
        return False
    return bool(axes) and axes[0].direction.lower() in ("north", "south")


@functools.lru_cache(maxsize=256)
def _area_of_use(crs: str) -> tuple[float, float, float, float] | None:
    try:
        area = pyproj.CRS.from_user_input(crs).area_of_use
    except CRSError:
        return None
    return None if area is None else (area.west, area.south, area.east, area.north)


def parse_crs(value: str, version: str, parameter: str = "CRS") -> MapCRS:
    """The CRS of a request (``EPSG:<code>``, ``CRS:84``, OGC URNs); InvalidCRS if unknown."""
    text = value.strip().upper()
    code = text
    if text.startswith("URN:OGC:DEF:CRS:"):  # urn:ogc:def:crs:EPSG::4326, ...:OGC:1.3:CRS84
        parts = text.split(":")
        authority, number = parts[4], parts[-1]
        code = "CRS:84" if number == "CRS84" else f"{authority}:{number}"
    if code in ("CRS:84", "OGC:CRS84"):
        return MapCRS("CRS:84", WGS84, False)
    authority, _, number = code.partition(":")
    if authority != "EPSG" or not number.isascii() or not number.isdigit() or len(number) > 9:
        raise WMSError("InvalidCRS" if version == "1.3.0" else "InvalidSRS",
                       f"{value!r} is not a supported {parameter}.", parameter)
    try:
        sr = from_wkid(int(number))
    except ValueError:
        raise WMSError("InvalidCRS" if version == "1.3.0" else "InvalidSRS",
                       f"{value!r} is not a supported {parameter}.", parameter) from None
    # WMS 1.1.1 (and CRS:84) are east/north whatever the EPSG definition says.
    north_first = version == "1.3.0" and _north_first(f"EPSG:{number}")
    return MapCRS(code, sr, north_first)


def parse_bbox(value: str, crs: MapCRS) -> tuple[float, float, float, float]:
    """BBOX as x/y (minx, miny, maxx, maxy) in the CRS, from the CRS's own axis order."""
    parts = value.split(",")
    if len(parts) != 4:
        raise invalid("BBOX", "expected four numbers: minx,miny,maxx,maxy")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise invalid("BBOX", "expected four numbers") from None
    if not all(math.isfinite(n) and abs(n) < MAX_COORDINATE for n in numbers):
        raise invalid("BBOX", "expected finite numbers")
    a0, b0, a1, b1 = numbers
    if a0 >= a1 or b0 >= b1:
        raise invalid("BBOX", "the minimum must be below the maximum on both axes")
    if crs.north_first:
        return b0, a0, b1, a1
    return a0, b0, a1, b1


def axis_ordered(bounds: tuple[float, float, float, float], crs: MapCRS
                 ) -> tuple[float, float, float, float]:
    """x/y bounds written in the CRS's own axis order (for BoundingBox elements)."""
    minx, miny, maxx, maxy = bounds
    return (miny, minx, maxy, maxx) if crs.north_first else bounds


def extent_in(bounds: tuple[float, float, float, float], crs: MapCRS
              ) -> tuple[float, float, float, float] | None:
    """A WGS 84 extent in ``crs`` (x/y), clipped to the CRS's area of use; None if it has none
    there or cannot be projected."""
    if crs.sr.is_wgs84:
        return bounds
    xmin, ymin, xmax, ymax = bounds
    area = _area_of_use(crs.sr.crs)
    if area is not None:
        xmin, ymin = max(xmin, area[0]), max(ymin, area[1])
        xmax, ymax = min(xmax, area[2]), min(ymax, area[3])
    if crs.sr.is_web_mercator:
        ymin, ymax = max(ymin, -MERCATOR_MAX_LAT), min(ymax, MERCATOR_MAX_LAT)
    if xmin > xmax or ymin > ymax:
        return None
    # The box's edges, densified: a straight edge in degrees is a curve in most CRSs.
    steps = np.linspace(0.0, 1.0, 33)
    xs = xmin + (xmax - xmin) * steps
    ys = ymin + (ymax - ymin) * steps
    edge_x = np.concatenate([xs, xs, np.full_like(ys, xmin), np.full_like(ys, xmax)])
    edge_y = np.concatenate([np.full_like(xs, ymin), np.full_like(xs, ymax), ys, ys])
    x, y = transformer(WGS84.crs, crs.sr.crs).transform(edge_x, edge_y)
    x, y = np.asarray(x), np.asarray(y)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return None
    return float(x.min()), float(y.min()), float(x.max()), float(y.max())
