"""Feature types: each layer (and table) of a dataset under an XML name, with its properties.

Names must be XML NCNames: a layer ``Bus stops (2024)`` is ``koop:Bus_stops_2024_``. The
mapping is a pure function of the dataset's layers (names, then ids for clashes), so it is the
same on every request: a layer keeps its name as long as the layers keep theirs. Field names
get the same treatment; the geometry is the property ``geometry`` (``geometry_`` if a field
takes that name).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from koop_app.data import LayerSet, LayerTable
from koop_app.data.schema import Field
from koop_app.outputs.geoservices.serializers import layer_name
from koop_app.outputs.wfs.errors import WFSError

PREFIX = "koop"
_NOT_NAME = re.compile(r"[^A-Za-z0-9_.\-]+")


def ncname(text: str, fallback: str) -> str:
    name = _NOT_NAME.sub("_", text.strip())
    if not name or not (name[0].isalpha() or name[0] == "_"):
        name = f"{fallback}_{name}" if name else fallback
    if name.lower().startswith("xml"):  # names starting with "xml" are reserved
        name = "_" + name
    return name


@dataclass(frozen=True)
class FeatureType:
    name: str  # local name (NCName)
    title: str
    table: LayerTable
    properties: tuple[tuple[str, Field], ...]  # (element name, field)
    geometry_property: str | None

    @property
    def qname(self) -> str:
        return f"{PREFIX}:{self.name}"

    def field_of(self, element: str) -> Field | None:
        """The field of a property name (an element name, or the field's own name)."""
        local = element.rpartition(":")[2].rpartition("/")[2].rpartition(":")[2]
        for name, field in self.properties:
            if name == local:
                return field
        lowered = local.lower()
        for name, field in self.properties:
            if name.lower() == lowered or field.name.lower() == lowered:
                return field
        return None

    def is_geometry(self, element: str) -> bool:
        local = element.rpartition("/")[2].rpartition(":")[2]
        return self.geometry_property is not None and local.lower() in (
            self.geometry_property.lower(), "geometry", "the_geom", "shape", "geom")


def _properties(table: LayerTable) -> tuple[tuple[tuple[str, Field], ...], str | None]:
    taken: set[str] = set()
    out = []
    for field in table.schema.fields:
        name = ncname(field.name, "f")
        while name.lower() in taken:
            name += "_"
        taken.add(name.lower())
        out.append((name, field))
    geometry = None
    if not table.is_table and table.schema.geometry_type:
        geometry = "geometry"
        while geometry in taken:
            geometry += "_"
    return tuple(out), geometry


def feature_types(layers: LayerSet, fallback: str) -> list[FeatureType]:
    """The dataset's feature types, in layer order."""
    titles = [layer_name(t, fallback if len(layers.layers) == 1 else
                         f"{fallback} {t.layer_id}") for t in layers.layers]
    names = [ncname(title, "layer") for title in titles]
    clashes = {n.lower() for n in names if sum(m.lower() == n.lower() for m in names) > 1}
    out = []
    for table, title, name in zip(layers.layers, titles, names, strict=True):
        if name.lower() in clashes:
            name = f"{name}_{table.layer_id}"
        properties, geometry = _properties(table)
        out.append(FeatureType(name, title, table, properties, geometry))
    return out


def find_type(types: Iterable[FeatureType], typename: str, parameter: str = "TYPENAMES",
              ) -> FeatureType:
    """The feature type ``typename`` names: ``koop:name``, ``name`` or ``{namespace}name``."""
    text = typename.strip()
    local = text.rpartition("}")[2] if text.startswith("{") else text.rpartition(":")[2]
    types = list(types)
    for wanted in (lambda t: t.name == local, lambda t: t.name.lower() == local.lower()):
        for feature_type in types:
            if wanted(feature_type):
                return feature_type
    raise WFSError("InvalidParameterValue", f"Unknown feature type {text[:200]!r}.", parameter)
