"""CRS names as WFS clients write them, and their axis order.

WFS 1.1 and 2.0 follow the EPSG database's axis order for the URN and URI forms
(``urn:ogc:def:crs:EPSG::4326`` and ``http://www.opengis.net/def/crs/EPSG/0/4326`` are
latitude, longitude), while the legacy ``EPSG:4326`` and
``http://www.opengis.net/gml/srs/epsg.xml#4326`` forms keep x/y (longitude, latitude), as
GeoServer, MapServer and GDAL read them. CRS84 is always longitude, latitude.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import pyproj
from pyproj.exceptions import CRSError

from koop_app.outputs.wfs.errors import invalid
from koop_app.query.sr import from_wkid

DEFAULT_CRS = "urn:ogc:def:crs:EPSG::4326"
CRS84 = "urn:ogc:def:crs:OGC:1.3:CRS84"
# Advertised as OtherCRS; any EPSG code PROJ knows is taken as well.
OTHER_CRS = ("urn:ogc:def:crs:EPSG::3857", CRS84, "urn:ogc:def:crs:EPSG::4258",
             "urn:ogc:def:crs:EPSG::3395")

_AUTHORITY_ORDER = [  # (pattern, the EPSG database's axis order applies)
    (re.compile(r"^urn:(?:x-)?ogc:def:crs:EPSG:[0-9.]*:(\d+)$", re.I), True),
    (re.compile(r"^https?://www\.opengis\.net/def/crs/EPSG/[0-9.]+/(\d+)$", re.I), True),
    (re.compile(r"^EPSG:(\d+)$", re.I), False),
    (re.compile(r"^https?://www\.opengis\.net/gml/srs/epsg\.xml#(\d+)$", re.I), False),
]
_CRS84 = re.compile(r"^(?:urn:ogc:def:crs:OGC:[0-9.]*:CRS84|"
                    r"https?://www\.opengis\.net/def/crs/OGC/[0-9.]+/CRS84|CRS:84)$", re.I)


@dataclass(frozen=True)
class CRS:
    """A CRS of a request: its EPSG code and whether coordinates come y first."""

    epsg: int
    swap: bool
    name: str  # as the client wrote it, echoed in srsName

    @property
    def wkid(self) -> str:
        return str(self.epsg)


WGS84_LATLON = CRS(4326, True, DEFAULT_CRS)


def parse_crs(text: str, parameter: str) -> CRS:
    """The CRS named ``text``; InvalidParameterValue if unknown or not one we can serve."""
    name = text.strip()
    if _CRS84.match(name):
        return CRS(4326, False, name)
    for pattern, authority_order in _AUTHORITY_ORDER:
        match = pattern.match(name)
        if match:
            code = int(match.group(1))
            try:
                from_wkid(code)
            except ValueError:
                break
            return CRS(code, authority_order and _north_first(code), name)
    raise invalid(parameter, f"unknown or unsupported CRS {name[:100]!r}")


@functools.lru_cache(maxsize=128)
def _north_first(code: int) -> bool:
    try:
        axes = pyproj.CRS.from_epsg(code).axis_info
    except CRSError:
        return False
    return bool(axes) and axes[0].direction.lower() in ("north", "south")


def urn(epsg: int) -> str:
    return f"urn:ogc:def:crs:EPSG::{epsg}"
