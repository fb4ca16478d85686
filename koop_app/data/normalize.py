"""GeoJSON FeatureCollection -> one columnar layer (Arrow table + LayerSchema).

Whatever the provider, a layer ends up as: the object id column, one typed column per attribute,
the geometry as WKB (polygons wound per RFC 7946) and its bounding box as four float columns.
This runs once per refresh, off the query path.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from koop_app.data import validate
from koop_app.data.schema import (
    ARROW_TYPES,
    DATE,
    DOUBLE,
    GEOMETRY_TYPES,
    INTEGER,
    OID,
    SMALL_INTEGER,
    STRING,
    Field,
    LayerSchema,
    esri_geometry_type,
    esri_type,
)
from koop_app.data.values import INT32_MAX, INT32_MIN, ISO_DATE, coerce_column, infer_type
from koop_app.errors import SourceFormatError

logger = logging.getLogger(__name__)

GEOMETRY_COLUMN = "_koop_geom"
BBOX_COLUMNS = ("_koop_xmin", "_koop_ymin", "_koop_xmax", "_koop_ymax")
RESERVED_COLUMNS = {GEOMETRY_COLUMN, *BBOX_COLUMNS}
MIN_STRING_LENGTH = 256
ENUM_MIN_ROWS = 10_000  # below this an ENUM saves nothing worth the bookkeeping
ENUM_MAX_VALUES = 1_000

# shapely type id -> GeoJSON type name
_TYPE_NAMES = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString",
               6: "MultiPolygon", 7: "GeometryCollection"}


@dataclass(frozen=True)
class Overrides:
    """What the administrator set on the dataset, winning over the provider's metadata."""

    name: str = ""
    description: str = ""
    id_field: str = ""
    display_field: str = ""
    geometry_type: str = ""
    max_record_count: int | None = None
    fields: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    start_time_field: str = ""
    end_time_field: str = ""


@dataclass(frozen=True)
class NormalizedLayer:
    table: pa.Table
    schema: LayerSchema
    # What a pass-through provider already did or knows: filtersApplied, count, extent,
    # statistics (see SourceAnswers).
    answers: SourceAnswers | None = None


@dataclass(frozen=True)
class SourceAnswers:
    """Work a pass-through provider did at its source, so the engine does not redo it."""

    filters_applied: frozenset[str] = frozenset()
    count: int | None = None
    extent: tuple[float, float, float, float] | None = None
    statistics: tuple[dict[str, Any], ...] | None = None
    limit_exceeded: bool = False

    @classmethod
    def from_collection(cls, collection: Mapping[str, Any]) -> SourceAnswers | None:
        applied = collection.get("filtersApplied") or {}
        metadata = collection.get("metadata") or {}
        count = collection.get("count")
        extent = collection.get("extent") or metadata.get("extent")
        statistics = collection.get("statistics")
        if not (applied or count is not None or extent or statistics
                or metadata.get("limitExceeded")):
            return None
        names = frozenset(k.lower() for k, v in applied.items() if v) if isinstance(
            applied, Mapping) else frozenset()
        return cls(
            filters_applied=names,
            count=int(count) if isinstance(count, int) and not isinstance(count, bool) else None,
            extent=_extent_of(extent),
            statistics=tuple(statistics) if isinstance(statistics, list) else None,
            limit_exceeded=bool(metadata.get("limitExceeded")),
        )


def _extent_of(value: Any) -> tuple[float, float, float, float] | None:
    """An extent as [xmin, ymin, xmax, ymax], [[xmin, ymin], [xmax, ymax]] or Esri JSON."""
    try:
        if isinstance(value, Mapping):
            return tuple(float(value[k]) for k in ("xmin", "ymin", "xmax", "ymax"))  # type: ignore[return-value]
        if isinstance(value, (list, tuple)) and len(value) == 2:
            (xmin, ymin), (xmax, ymax) = value
            return float(xmin), float(ymin), float(xmax), float(ymax)
        if isinstance(value, (list, tuple)) and len(value) == 4:
            return tuple(float(v) for v in value)  # type: ignore[return-value]
    except (KeyError, TypeError, ValueError):
        return None
    return None


AssignIds = Callable[[pa.Array], pa.Array]


def normalize(
    collection: Any,
    *,
    label: str,
    assign_ids: AssignIds,
    overrides: Overrides | None = None,
    check_geojson: bool = False,
) -> NormalizedLayer:
    """Turn a provider's FeatureCollection into a NormalizedLayer.

    ``assign_ids`` maps feature keys (strings) to stable integer ids; it is only called when
    the layer has no usable integer id field. ``label`` names the dataset in log lines.
    """
    overrides = overrides or Overrides()
    features = _features(collection)
    metadata = dict(collection.get("metadata") or {})
    count = len(features)

    struct = _properties_struct(features)
    if struct is not None:
        names = _first_appearance_order(features, [f.name for f in struct.type])
        columns: dict[str, list[Any]] = {}
    else:
        names, columns = _columns(features, count)
    declared = _declared_fields(metadata, overrides, label)
    # Fields the provider declares that no feature carries (a pass-through answer with no
    # rows, or outFields narrowed at the source): still fields of the layer, all null.
    absent = _absent_declared(metadata, names)
    fields: list[Field] = []
    arrays: dict[str, pa.Array] = {}
    for name in [*names, *absent]:
        spec = declared.get(name.lower(), {})
        typed_array = None
        if name in absent:
            kind, boolean = spec.get("type") or STRING, spec.get("boolean", False)
            typed_array = pa.nulls(count, ARROW_TYPES[kind]), kind, boolean
        elif struct is not None and not spec.get("type"):
            typed_array = _typed_array(struct.field(name))
        if typed_array is not None:
            array, kind, boolean = typed_array
        else:
            if name in absent:
                values = [None] * count
            else:
                values = columns[name] if struct is None else struct.field(name).to_pylist()
            if spec.get("type"):
                kind, boolean = spec["type"], spec.get("boolean", False)
            else:
                kind, boolean = infer_type(values)
            typed, lost = coerce_column(values, kind, boolean)
            if lost:
                logger.warning("%s: %d value(s) of field %r are not %s and were set to null",
                               label, lost, name, kind.removeprefix("esriFieldType"))
            array = pa.array(typed, type=ARROW_TYPES[kind])
        length = None
        enum_values = None
        if kind == STRING:
            longest = pc.max(pc.utf8_length(array)).as_py() if len(array) else 0
            length = max(MIN_STRING_LENGTH, longest or 0)
            enum_values = _enum_values(array)
        elif kind == DATE:
            length = 8
        fields.append(Field(name, kind, spec.get("alias") or name, length, boolean,
                            enum_values))
        arrays[name] = array

    oid_name, oid_values = _object_ids(features, fields, arrays, metadata, overrides, assign_ids,
                                       label)
    if oid_name in arrays:
        index = next(i for i, f in enumerate(fields) if f.name == oid_name)
        fields[index] = Field(oid_name, OID, fields[index].alias or oid_name)
    else:
        fields.insert(0, Field(oid_name, OID, oid_name))
    arrays[oid_name] = oid_values

    geometries, geometry_type = _geometries(features, metadata, overrides, label, check_geojson)
    bounds = shapely.bounds(geometries)
    # A provider's declared extent stands for a layer it describes without rows (a
    # pass-through layer's info); rows, when there are some, give it.
    extent = _extent_of(metadata.get("extent"))
    if count and not np.isnan(bounds).all():
        extent = (
            float(np.nanmin(bounds[:, 0])), float(np.nanmin(bounds[:, 1])),
            float(np.nanmax(bounds[:, 2])), float(np.nanmax(bounds[:, 3])),
        )
    ordered = [f.name for f in fields]
    table = pa.table(
        {
            **{name: arrays[name] for name in ordered},
            GEOMETRY_COLUMN: pa.array(shapely.to_wkb(geometries), type=pa.binary()),
            **{col: pa.array(bounds[:, i], type=pa.float64(), from_pandas=True)
               for i, col in enumerate(BBOX_COLUMNS)},
        }
    )
    schema = LayerSchema(
        fields=tuple(fields),
        object_id_field=oid_name,
        geometry_type=geometry_type,
        extent=extent,
        metadata=_layer_metadata(metadata, overrides, fields),
    )
    return NormalizedLayer(table, schema, SourceAnswers.from_collection(collection))


def _properties_struct(features: list[dict[str, Any]]) -> pa.StructArray | None:
    """All properties as one Arrow struct column when Arrow can type every field itself.

    The columnar fast path: Arrow infers each field's type from all values in C++. Fields
    of mixed types, nested values, or names that clash case-insensitively send the layer
    through the per-value path instead, which types them the same way but slower.
    """
    properties = [f.get("properties") or {} for f in features]
    try:
        struct = pa.array(properties)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError,
            TypeError, ValueError):
        return None
    if not pa.types.is_struct(struct.type):
        return None
    names = [f.name for f in struct.type]
    lowered = [n.lower() for n in names]
    if len(set(lowered)) != len(lowered) or set(lowered) & RESERVED_COLUMNS:
        return None
    if any(pa.types.is_nested(f.type) for f in struct.type):
        return None
    return struct


def _absent_declared(metadata: Mapping[str, Any], names: list[str]) -> list[str]:
    """Fields the provider declares (``metadata.fields`` with a type) that no feature carries.

    A pass-through answer with no rows, or with the few columns a query asked for, still
    describes the layer's every field: they are kept as columns of nulls, in declared order.
    """
    present = {name.lower() for name in names} | RESERVED_COLUMNS
    absent: list[str] = []
    for spec in metadata.get("fields") or []:
        if isinstance(spec, Mapping) and spec.get("name") and spec.get("type"):
            name = str(spec["name"])
            if name.lower() not in present:
                present.add(name.lower())
                absent.append(name)
    return absent


def _first_appearance_order(features: list[dict[str, Any]], names: list[str]) -> list[str]:
    """Field names in the order features first use them (Arrow sorts struct fields)."""
    wanted, order = set(names), []
    for feature in features:
        for key in feature.get("properties") or ():
            if key in wanted:
                wanted.discard(key)
                order.append(key)
        if not wanted:
            break
    return order


def _typed_array(column: pa.Array) -> tuple[pa.Array, str, bool] | None:
    """(array, esri type, is_boolean) for an Arrow-typed column, or None to type it per value."""
    kind = column.type
    if pa.types.is_null(kind):
        return pa.nulls(len(column), pa.string()), STRING, False
    if pa.types.is_boolean(kind):
        return column.cast(pa.int16()), SMALL_INTEGER, True
    if pa.types.is_integer(kind):
        low, high = pc.min_max(column).values()
        if low.as_py() is None or (INT32_MIN <= low.as_py() and high.as_py() <= INT32_MAX):
            return column.cast(pa.int32()), INTEGER, False
        return column.cast(pa.float64()), DOUBLE, False
    if pa.types.is_floating(kind):
        return column.cast(pa.float64()), DOUBLE, False
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        present = column.drop_null()
        if len(present) and pc.all(pc.match_substring_regex(present, ISO_DATE.pattern)).as_py():
            for target in (pa.timestamp("ms", tz="UTC"), pa.timestamp("ms")):
                try:
                    return column.cast(target).cast(pa.int64()), DATE, False
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    continue
            return None  # several ISO forms in one column: parse value by value
        return column.cast(pa.string()), STRING, False
    return None


def _enum_values(array: pa.Array) -> tuple[str, ...] | None:
    if len(array) < ENUM_MIN_ROWS:
        return None
    values = pc.unique(array).drop_null()
    if not 0 < len(values) <= ENUM_MAX_VALUES:
        return None
    return tuple(sorted(values.to_pylist()))


def _features(collection: Any) -> list[dict[str, Any]]:
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        raise SourceFormatError("The provider did not return a GeoJSON FeatureCollection.")
    features = collection.get("features")
    if not isinstance(features, list):
        raise SourceFormatError("The FeatureCollection has no 'features' list.")
    for index, feature in enumerate(features):
        if not isinstance(feature, dict):
            raise SourceFormatError(f"Feature {index} is not a JSON object.")
    return features


def _columns(features: list[dict[str, Any]], count: int) -> tuple[list[str], dict[str, list]]:
    """Gather property values column by column; names are unique case-insensitively."""
    columns: dict[str, list[Any]] = {}
    canonical: dict[str, str] = {}  # lower-cased source name -> column name
    renamed: dict[str, str] = {}  # exact source name -> column name
    for index, feature in enumerate(features):
        properties = feature.get("properties")
        if not isinstance(properties, dict):
            continue
        for key, value in properties.items():
            name = renamed.get(key)
            if name is None:
                name = _column_name(str(key), canonical)
                renamed[key] = name
                columns[name] = [None] * count
            columns[name][index] = value
    return list(columns), columns


def _column_name(key: str, canonical: dict[str, str]) -> str:
    base = key if key.lower() not in RESERVED_COLUMNS else f"{key}_"
    name, n = base, 0
    while name.lower() in canonical:
        n += 1
        name = f"{base}_{n}"
    canonical[name.lower()] = name
    return name


def _absent_declared(metadata: Mapping[str, Any], names: list[str]) -> list[str]:
    """Typed fields the provider's metadata declares that no feature carries (all null).

    A pass-through answer may hold no feature (nothing matched, or only a count or statistics
    came back): its layer still has the source's fields, so that outFields, orderByFields and
    outStatistics naming them are checked as usual rather than refused as unknown.
    """
    present = {name.lower() for name in names}
    out: list[str] = []
    for spec in metadata.get("fields") or []:
        if not isinstance(spec, Mapping) or not spec.get("name") or not spec.get("type"):
            continue
        name = str(spec["name"])
        if name.lower() not in present and name.lower() not in RESERVED_COLUMNS:
            present.add(name.lower())
            out.append(name)
    return out


def _declared_fields(
    metadata: Mapping[str, Any], overrides: Overrides, label: str
) -> dict[str, dict[str, Any]]:
    """Field types/aliases from the provider's metadata, then the administrator's overrides."""
    declared: dict[str, dict[str, Any]] = {}
    provided = metadata.get("fields") or []
    entries = [(f.get("name"), f) for f in provided if isinstance(f, dict)]
    entries += list(overrides.fields.items())
    for name, spec in entries:
        if not name or not isinstance(spec, Mapping):
            continue
        entry = declared.setdefault(str(name).lower(), {})
        if spec.get("alias"):
            entry["alias"] = str(spec["alias"])
        if spec.get("type"):
            try:
                entry["type"] = esri_type(str(spec["type"]))
            except ValueError:
                logger.warning("%s: field %r has unknown type %r; inferring it", label, name,
                               spec["type"])
                continue
            entry["boolean"] = str(spec["type"]).lower() in ("boolean", "bool")
            if entry["type"] == OID:
                entry["type"] = "esriFieldTypeInteger"
    return declared


def _object_ids(features, fields, arrays, metadata, overrides, assign_ids, label):
    """Choose the object id column: a usable integer id field, else stable assigned ids."""
    names = {f.name.lower(): f.name for f in fields}
    wanted = overrides.id_field or metadata.get("idField") or ""
    candidate = names.get(str(wanted).lower()) if wanted else names.get("objectid")
    if candidate and _usable_ids(arrays[candidate]):
        return candidate, arrays[candidate].cast(pa.int64())
    if wanted and not candidate:
        logger.warning("%s: idField %r is not a field; assigning object ids", label, wanted)
    elif wanted:
        logger.warning("%s: idField %r is not unique positive 32-bit integers; assigning object "
                       "ids keyed on it", label, wanted)
    key_values = arrays[candidate].to_pylist() if candidate and wanted else None
    keys = pa.array(_feature_keys(features, key_values), type=pa.string())
    oid_values = assign_ids(keys)
    name = "OBJECTID"
    n = 0
    while name.lower() in names:
        n += 1
        name = f"OBJECTID_{n}"
    return name, oid_values


def _usable_ids(array: pa.Array) -> bool:
    if not pa.types.is_integer(array.type) or array.null_count:
        return False
    if len(array) == 0:
        return True
    values = array.to_numpy()
    in_range = values.min() > 0 and values.max() <= INT32_MAX
    return bool(in_range and len(np.unique(values)) == len(values))


def _feature_keys(features: list[dict[str, Any]], key_values: list[Any] | None) -> list[str]:
    """A key per feature: the id field, the GeoJSON id, or a digest of its content.

    Repeats get an occurrence suffix so that identical features still get distinct ids.
    """
    keys: list[str] = []
    seen: dict[str, int] = {}
    for index, feature in enumerate(features):
        if key_values is not None and key_values[index] is not None:
            key = f"f:{key_values[index]}"
        elif feature.get("id") is not None:
            key = f"i:{feature['id']}"
        else:
            content = orjson.dumps(
                [feature.get("properties"), feature.get("geometry")],
                option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY,
            )
            key = "h:" + hashlib.blake2b(content, digest_size=12).hexdigest()
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        keys.append(key if occurrence == 0 else f"{key}#{occurrence}")
    return keys


def _points(features: list[dict[str, Any]]) -> np.ndarray | None:
    """Point layers (the common large case) built from their coordinates in one step."""
    geometries = [feature.get("geometry") for feature in features]
    if not all(g is None or (type(g) is dict and g.get("type") == "Point") for g in geometries):
        return None
    present = np.array([g is not None for g in geometries], dtype=bool)
    try:
        xy = np.array([g["coordinates"][:2] for g in geometries if g is not None], dtype=float)
    except (KeyError, TypeError, ValueError):
        return None  # odd coordinates: the general path reports them
    if xy.size and (xy.ndim != 2 or xy.shape[1] != 2 or not np.isfinite(xy).all()):
        return None
    out = np.full(len(features), None, dtype=object)
    if xy.size:
        out[present] = shapely.points(xy)
    return out


def _parse_geometries(features: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Shapely geometries (None where absent or unreadable) and the GeoJSON texts' presence."""
    points = _points(features)
    if points is not None:
        return points, np.zeros(len(features), dtype=bool)
    texts = np.empty(len(features), dtype=object)
    for index, feature in enumerate(features):
        geometry = feature.get("geometry")
        if geometry is not None:
            try:
                texts[index] = orjson.dumps(geometry)
            except TypeError:
                texts[index] = b"{}"
    parsed = shapely.from_geojson(texts, on_invalid="ignore")
    return parsed, texts != None  # noqa: E711


def declared_geometry_type(overrides: Overrides, metadata: Mapping[str, Any],
                           label: str) -> str | None:
    """The Esri geometry type the administrator or the provider declared, if a known one."""
    wanted = overrides.geometry_type or metadata.get("geometryType") or ""
    if wanted:
        try:
            return esri_geometry_type(str(wanted))
        except ValueError:
            logger.warning("%s: unknown geometryType %r; inferring it", label, wanted)
    return None


def _geometries(features, metadata, overrides, label, check_geojson):
    """Parse geometries (vectorised), pick the layer's geometry type, wind polygons per RFC 7946."""
    parsed, given = _parse_geometries(features)
    unparsable = np.flatnonzero(given & shapely.is_missing(parsed))
    if len(unparsable):
        logger.warning("%s: %d geometr%s could not be read (bad coordinates or type) and are "
                       "null, e.g. feature %d", label, len(unparsable),
                       "y" if len(unparsable) == 1 else "ies", int(unparsable[0]))
    type_ids = shapely.get_type_id(parsed)
    present = type_ids >= 0
    geometry_type = declared_geometry_type(overrides, metadata, label)
    if geometry_type is None and present.any():
        first = int(type_ids[present][0])
        geometry_type = GEOMETRY_TYPES.get(_TYPE_NAMES[first]) if first != 7 else None
        if geometry_type == "esriGeometryPoint" and (type_ids == 4).any():
            geometry_type = "esriGeometryMultipoint"  # Esri points cannot hold a MultiPoint
    if check_geojson:
        validate.log_problems(parsed, type_ids, label)
    if geometry_type:
        allowed = [t for t, name in _TYPE_NAMES.items()
                   if name in GEOMETRY_TYPES and GEOMETRY_TYPES[name] == geometry_type]
        if geometry_type == "esriGeometryMultipoint":
            allowed.append(0)  # a Point is a one-point Multipoint
        foreign = present & ~np.isin(type_ids, allowed)
        if foreign.any():
            logger.warning("%s: %d feature(s) are not %s like the layer and have no geometry",
                           label, int(foreign.sum()), geometry_type.removeprefix("esriGeometry"))
            parsed[foreign] = None
    elif present.any():
        logger.warning("%s: geometries are collections only; served without geometry", label)
        parsed[:] = None
    if geometry_type == "esriGeometryPolygon":
        parsed = shapely.orient_polygons(parsed, exterior_cw=False)
    if shapely.has_z(parsed).any():
        parsed = shapely.force_2d(parsed)
    return parsed, geometry_type


def _layer_metadata(
    metadata: Mapping[str, Any], overrides: Overrides, fields: list[Field]
) -> dict[str, Any]:
    """The descriptive metadata kept with the layer (names checked against the fields)."""
    names = {f.name.lower(): f.name for f in fields}
    display = overrides.display_field or metadata.get("displayField") or ""
    display = names.get(str(display).lower(), "")
    if not display:
        display = next((f.name for f in fields if f.type == STRING), fields[0].name)
    kept: dict[str, Any] = {
        "name": overrides.name or metadata.get("name") or "",
        "description": overrides.description or metadata.get("description") or "",
        "displayField": display,
    }
    max_records = overrides.max_record_count or metadata.get("maxRecordCount")
    if max_records:
        kept["maxRecordCount"] = int(max_records)
    for key in ("timeInfo", "limitExceeded", "copyrightText"):
        if key in metadata:
            kept[key] = metadata[key]
    # A provider's own symbology (Esri drawingInfo): FeatureServer, WMS and tile styles use it.
    drawing = metadata.get("drawingInfo")
    if isinstance(drawing, dict) and isinstance(drawing.get("renderer"), dict):
        kept["drawingInfo"] = drawing
    if overrides.start_time_field:
        kept["timeInfo"] = {"startTimeField": overrides.start_time_field,
                            "endTimeField": overrides.end_time_field or None}
    if any(f.type == SMALL_INTEGER and f.boolean for f in fields):
        kept["booleanFields"] = [f.name for f in fields if f.boolean]
    return kept
