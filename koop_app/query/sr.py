"""Spatial references: parse inSR/outSR values and describe them as GeoServices does.

Layers are stored in WGS 84 (4326). A reference may be given as a WKID (``102100``), as JSON
(``{"wkid": 102100, "latestWkid": 3857}``, extra keys allowed) or as ``{"wkt": "..."}``. An
unknown reference is a 400: never a silent fallback to 4326.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import orjson
import pyproj
from pyproj.exceptions import CRSError

from koop_app.errors import InvalidParameterError

WEB_MERCATOR_WKIDS = {3857, 102100, 102113, 900913, 3785}
# A WKID in the text of a parameter: ASCII digits only (str.isdigit() also takes "²", which
# int() refuses) and few of them (int() refuses more than 4,300 digits).
WKID_TEXT = re.compile(r"-?[0-9]{1,12}")
MERCATOR_MAX_LAT = 85.0511287798066


@dataclass(frozen=True)
class SpatialRef:
    wkid: int | None
    latest_wkid: int | None
    crs: str  # what PROJ (pyproj, DuckDB's ST_Transform) takes: "EPSG:3857" or a WKT
    wkt: str | None = None

    @property
    def is_wgs84(self) -> bool:
        return self.latest_wkid == 4326

    @property
    def is_web_mercator(self) -> bool:
        return self.latest_wkid == 3857 or self.wkid in WEB_MERCATOR_WKIDS

    @property
    def is_geographic(self) -> bool:
        return self.is_wgs84 or _crs(self.crs).is_geographic

    def as_json(self) -> dict[str, Any]:
        if self.wkid is None:
            return {"wkt": self.wkt}
        return {"wkid": self.wkid, "latestWkid": self.latest_wkid or self.wkid}


@functools.lru_cache(maxsize=256)
def _crs(text: str) -> pyproj.CRS:
    return pyproj.CRS.from_user_input(text)


@functools.lru_cache(maxsize=256)
def from_wkid(wkid: int) -> SpatialRef:
    """The reference for a WKID, trying EPSG then ESRI codes; ValueError if unknown."""
    if wkid in WEB_MERCATOR_WKIDS:
        return SpatialRef(wkid, 3857, "EPSG:3857")
    if not 0 < wkid < 2**31:  # no authority has codes outside this
        raise ValueError(f"unknown spatial reference {wkid}")
    for authority in ("EPSG", "ESRI"):
        try:
            crs = _crs(f"{authority}:{wkid}")
        except (CRSError, ValueError):
            continue
        _check_horizontal(crs, wkid)
        epsg = crs.to_epsg()
        name = f"EPSG:{epsg}" if epsg else f"{authority}:{wkid}"
        return SpatialRef(wkid, epsg or wkid, name)
    raise ValueError(f"unknown spatial reference {wkid}")


def _check_horizontal(crs: pyproj.CRS, what: object) -> None:
    # Vertical and geocentric references parse, but give no x, y to filter or draw with.
    if not (crs.is_geographic or crs.is_projected):
        raise ValueError(f"the spatial reference {what} is not a horizontal one")


WGS84 = from_wkid(4326)


def parse_sr(value: Any, parameter: str) -> SpatialRef | None:
    """Parse a WKID, an SR JSON object (or its text); None when absent."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        text = value.strip()
        if WKID_TEXT.fullmatch(text):
            value = int(text)
        elif text.lstrip("-")[:1].isdigit():
            raise InvalidParameterError(parameter, "not a known WKID")
        else:
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise InvalidParameterError(parameter, f"{text!r} is not a spatial reference") \
                    from None
    try:
        if isinstance(value, bool):
            raise ValueError("not a spatial reference")
        if isinstance(value, int):
            return from_wkid(value)
        if isinstance(value, dict):
            for key in ("latestWkid", "wkid"):
                if isinstance(value.get(key), int) and not isinstance(value.get(key), bool):
                    try:
                        ref = from_wkid(value[key])
                    except ValueError:
                        continue
                    wkid = value.get("wkid")
                    if not isinstance(wkid, int) or isinstance(wkid, bool):
                        wkid = ref.wkid
                    return SpatialRef(wkid, ref.latest_wkid, ref.crs)
            if isinstance(value.get("wkt"), str):
                try:
                    crs = _crs(value["wkt"])
                except (CRSError, ValueError):
                    raise ValueError("the WKT is not a spatial reference") from None
                _check_horizontal(crs, "in the WKT")
                epsg = crs.to_epsg()
                if epsg:
                    return from_wkid(epsg)
                return SpatialRef(None, None, value["wkt"], value["wkt"])
            raise ValueError("no known wkid, latestWkid or wkt")
        raise ValueError("not a spatial reference")
    except ValueError as exc:
        raise InvalidParameterError(parameter, str(exc)) from None


@functools.lru_cache(maxsize=256)
def transformer(source: str, target: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(_crs(source), _crs(target), always_xy=True)
