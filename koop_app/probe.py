"""Checking a dataset's source before it is saved: what a refresh would find, nothing stored.

    found = probe(Dataset(provider=geojson, dataset_id="parks",
                          options={"source": "parks.geojson"}))
    found.count, found.geometry_type, found.fields, found.rows      # or CheckFailed

A cached provider's source is fetched and read exactly as a refresh reads it (``build_copy``:
the same safe-fetch rules, size limits, timeouts and metadata overrides); the copy it made is
kept on the result, so that saving the dataset can store it instead of fetching it again
(``data.refresh(..., built=found.copy)``). A pass-through provider is asked one small query.
The admin's "Check the source" button and ``manage.py koop_dataset`` use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from koop_app.data.build import Copy, build_copy
from koop_app.data.schema import DATE, OID, LayerSchema
from koop_app.errors import KoopError, NotFoundError, OptionsError
from koop_app.models import Dataset, Provider
from koop_app.provider import ProviderRequest
from koop_app.sources import is_url

ROWS_SHOWN = 5
TEXT_SHOWN = 80  # characters of a text value shown in the rows


class CheckFailed(Exception):
    """The source could not be read; ``message`` names the path or URL and says why."""

    def __init__(self, message: str, *, error: BaseException | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error = error


@dataclass(frozen=True)
class FoundField:
    """A field of the source as the layer will serve it."""

    name: str
    type: str  # plain: "Integer", "Double", "String", "Date", "Boolean", "OID", ...
    alias: str = ""

    @property
    def is_date(self) -> bool:
        return self.type == "Date"


@dataclass(frozen=True)
class Probe:
    """What the check found in the source (of the first layer, when there are several)."""

    location: str
    count: int
    geometry_type: str | None  # "Point", "Polyline", ... or None for a table
    fields: tuple[FoundField, ...]
    rows: tuple[dict[str, str], ...]
    layers: int = 1
    pass_through: bool = False
    more: bool = False  # pass-through: the source holds more than the sample asked
    object_id_field: str = ""
    copy: Copy | None = field(default=None, repr=False, compare=False)

    @property
    def summary(self) -> str:
        geometry = f"{self.geometry_type} geometry" if self.geometry_type else "no geometry"
        count = f"{self.count} feature{'s' if self.count != 1 else ''}"
        if self.pass_through:
            count = (f"{'at least ' if self.more else ''}{count} in a sample query (the "
                     "source is asked on every request)")
        layers = f" in the first of {self.layers} layers" if self.layers > 1 else ""
        shown = sum(1 for f in self.fields if f.type != "OID")
        return f"{count}{layers}, {geometry}, {shown} field{'s' if shown != 1 else ''}"

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]


def location_of(dataset: Dataset) -> str:
    """The source a dataset reads, as the administrator gave it: its "location" options (or
    URL-valued ones), else its route."""
    options = dataset.options or {}
    try:
        schema = dataset.provider.plugin.options_schema
    except NotFoundError:
        schema = ()
    found = [str(options[o.name]) for o in schema if o.kind == "location" and options.get(o.name)]
    found = found or [str(v) for v in options.values() if isinstance(v, str) and is_url(v)]
    return ", ".join(found) or dataset.route_label


def probe(dataset: Dataset, *, rows: int = ROWS_SHOWN) -> Probe:
    """Read ``dataset``'s source as a refresh would; raise CheckFailed naming the source."""
    location = location_of(dataset)
    try:
        plugin = dataset.provider.plugin
        options = plugin.clean_options(dataset.options)
    except NotFoundError:
        raise CheckFailed(f"The provider {dataset.provider.name!r} is not registered.") from None
    except OptionsError as exc:
        problems = "; ".join(f"{key}: {msg}" for key, msg in exc.errors.items())
        raise CheckFailed(f"The options are not valid: {problems}.", error=exc) from None
    pass_through = dataset.cache_policy == Provider.PASS_THROUGH
    query = {"where": "1=1", "outFields": "*", "resultOffset": "0",
             "resultRecordCount": str(rows)} if pass_through else {}
    request = ProviderRequest(
        params={"host": dataset.host or None, "id": dataset.dataset_id or None,
                "layer": None, "method": "query" if pass_through else None},
        query=query, dataset=dataset, options=options)
    try:
        key = plugin.create_key(request)
        copy = build_copy(dataset, request, key=key, pass_through=pass_through)
    except KoopError as exc:
        raise CheckFailed(failure_message(location, exc), error=exc) from None
    if not copy.layers:
        raise CheckFailed(f"{location}: the source holds no layer.")
    first = copy.layers[0]
    answers = first.answers
    return Probe(
        location=location,
        count=first.count,
        geometry_type=_geometry_name(first.schema),
        fields=tuple(FoundField(f.name, _type_name(f), f.alias if f.alias != f.name else "")
                     for f in first.schema.fields),
        rows=_first_rows(first.rows(), first.schema, rows),
        layers=len(copy.layers),
        pass_through=pass_through,
        more=bool(answers and answers.limit_exceeded),
        object_id_field=first.schema.object_id_field,
        copy=None if pass_through else copy,
    )


def failure_message(location: str, exc: KoopError) -> str:
    """The admin's message for a failed check, naming the source once."""
    message, detail = exc.message, exc.admin_message
    if detail.startswith(message.rstrip(".")):
        message = detail
    elif detail != message:
        message = f"{message} ({detail})"
    if location and location in message:
        return message
    return f"Reading {location} failed: {message}"


def _geometry_name(schema: LayerSchema) -> str | None:
    if not schema.geometry_type:
        return None
    return schema.geometry_type.removeprefix("esriGeometry")


def _type_name(found: Any) -> str:
    if found.boolean:
        return "Boolean"
    return str(found.type).removeprefix("esriFieldType")


def _first_rows(source: pa.Table | pa.RecordBatchReader, schema: LayerSchema,
                wanted: int) -> tuple[dict[str, str], ...]:
    """The attributes of the first ``wanted`` rows, as short display text."""
    if isinstance(source, pa.RecordBatchReader):
        batches = []
        got = 0
        for batch in source:
            batches.append(batch)
            got += batch.num_rows
            if got >= wanted:
                break
        table = pa.Table.from_batches(batches, schema=source.schema)
    else:
        table = source
    table = table.slice(0, wanted)
    names = [f.name for f in schema.fields if f.name in table.column_names]
    kinds = {f.name: f for f in schema.fields}
    columns = {name: table.column(name).to_pylist() for name in names}
    return tuple({name: _shown(columns[name][index], kinds[name])
                  for name in names} for index in range(table.num_rows))


def _shown(value: Any, found: Any) -> str:
    if value is None:
        return ""
    if found.type == DATE and isinstance(value, int):
        return datetime.fromtimestamp(value / 1000, UTC).isoformat().replace("+00:00", "Z")
    if found.boolean:
        return "true" if value else "false"
    if found.type == OID:
        return str(value)
    text = str(value)
    return text if len(text) <= TEXT_SHOWN else text[:TEXT_SHOWN - 1] + "…"
