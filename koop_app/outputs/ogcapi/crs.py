"""CRS URIs of OGC API - Features Part 2 <-> the engine's spatial references, with axis order.

Part 2 names a CRS by URI (``http://www.opengis.net/def/crs/EPSG/0/3857``) and uses the axis
order of its definition: EPSG:4326 is latitude first, while OGC's CRS84 (the default) is
longitude first. The engine always speaks x/y (longitude/easting first), so each ``OutputCrs``
knows whether coordinates are to be swapped on the way in and out.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import pyproj
from pyproj.exceptions import CRSError

from koop_app.errors import InvalidParameterError
from koop_app.query import sr

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CRS84H = "http://www.opengis.net/def/crs/OGC/0/CRS84h"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{code}"
# Listed in each collection's ``crs``; any other EPSG code PROJ knows is taken as well.
ADVERTISED = (CRS84, EPSG_URI.format(code=4326), EPSG_URI.format(code=3857))
_EPSG = re.compile(r"^(?:https?://www\.opengis\.net/def/crs/EPSG/0/|\[?EPSG:)(\d{1,9})\]?$",
                   re.IGNORECASE)
_CRS84 = re.compile(r"^(?:https?://www\.opengis\.net/def/crs/OGC/(?:1\.3|0)/CRS84|\[?OGC:CRS84\]?)$",
                    re.IGNORECASE)


@dataclass(frozen=True)
class OutputCrs:
    uri: str
    wkid: int
    swap: bool  # the CRS's first axis is northing/latitude


WGS84_LONLAT = OutputCrs(CRS84, 4326, False)


@functools.lru_cache(maxsize=128)
def _lat_first(wkid: int) -> bool:
    try:
        axes = pyproj.CRS.from_epsg(wkid).axis_info
    except CRSError:
        return False
    return bool(axes) and axes[0].direction.lower() in ("north", "south")


def parse_crs(value: str | None, parameter: str) -> OutputCrs:
    """The CRS named by ``value`` (CRS84 when absent); 400 naming ``parameter`` if unknown."""
    text = (value or "").strip()
    if not text or _CRS84.match(text):
        return WGS84_LONLAT
    found = _EPSG.match(text)
    if found is None:
        raise InvalidParameterError(parameter, f"{text[:120]!r} is not a supported CRS URI")
    code = int(found.group(1))
    try:
        ref = sr.from_wkid(code)
    except ValueError:
        raise InvalidParameterError(parameter, f"EPSG:{code} is not a known horizontal CRS") \
            from None
    if ref.latest_wkid != code and ref.wkid != code:
        raise InvalidParameterError(parameter, f"EPSG:{code} is not a known horizontal CRS")
    return OutputCrs(EPSG_URI.format(code=code), code, _lat_first(code))
