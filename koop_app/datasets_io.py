"""Datasets as code: plain dicts for export/import and the ``koop_dataset`` command.

    {"provider": "geojson", "host": "", "id": "places", "name": "Places",
     "options": {"source": "demo/places.geojson"}, "ttl": 600, ...}
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from koop_app.models import Dataset, Provider

FORMAT_VERSION = 1
# exported key -> model field
FIELDS = {
    "name": "name",
    "description": "description",
    "enabled": "enabled",
    "options": "options",
    "ttl": "ttl",
    "id_field": "id_field",
    "display_field": "display_field",
    "geometry_type": "geometry_type",
    "fields": "fields_override",
    "max_record_count": "max_record_count",
    "start_time_field": "start_time_field",
    "end_time_field": "end_time_field",
    "case_sensitive_strings": "case_sensitive_strings",
    # who may read it (public, signed-in, restricted); chosen users and groups stay per site
    "access": "access",
}


def export_datasets(queryset: Any = None) -> dict[str, Any]:
    rows = (queryset if queryset is not None else Dataset.objects.all()).select_related("provider")
    return {
        "version": FORMAT_VERSION,
        "datasets": [
            {"provider": d.provider.name, "host": d.host, "id": d.dataset_id,
             **{key: getattr(d, field) for key, field in FIELDS.items()}}
            for d in rows
        ],
    }


def save_dataset(entry: dict[str, Any], *, merge_options: bool = False) -> tuple[Dataset, bool]:
    """Create or update the dataset that ``entry`` describes; raise ValidationError if invalid.

    With ``merge_options`` the given options are added to the dataset's existing ones instead of
    replacing them (for ``koop_dataset --option key=value`` edits).
    """
    unknown = set(entry) - {"provider", "host", "id", *FIELDS}
    if unknown:
        raise ValidationError(f"Unknown key(s): {', '.join(sorted(unknown))}")
    Provider.sync_from_registry()
    try:
        provider = Provider.objects.get(name=entry.get("provider"))
    except Provider.DoesNotExist:
        raise ValidationError(
            {"provider": f"Provider {entry.get('provider')!r} is not registered."}
        ) from None
    host, dataset_id = entry.get("host") or "", entry.get("id") or ""
    dataset = Dataset.objects.filter(provider=provider, host=host, dataset_id=dataset_id).first()
    created = dataset is None
    if created:
        dataset = Dataset(provider=provider, host=host, dataset_id=dataset_id)
    for key, field in FIELDS.items():
        if key not in entry:
            continue
        value = entry[key]
        if key == "options" and merge_options and not created:
            value = {**(dataset.options or {}), **(value or {})}
        setattr(dataset, field, value if value is not None or key in ("ttl", "max_record_count")
                else getattr(Dataset(), field))
    dataset.full_clean()
    dataset.save()
    return dataset, created


def import_datasets(document: Any) -> list[tuple[Dataset, bool]]:
    """Save every dataset of an export document, all or none; errors name the entry."""
    if not isinstance(document, dict) or not isinstance(document.get("datasets"), list):
        raise ValidationError('Expected {"version": 1, "datasets": [...]}.')
    if document.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise ValidationError(f"Unsupported format version {document.get('version')!r}.")
    saved = []
    with transaction.atomic():
        for index, entry in enumerate(document["datasets"]):
            if not isinstance(entry, dict):
                raise ValidationError(f"Entry {index} is not an object.")
            try:
                saved.append(save_dataset(entry))
            except ValidationError as exc:
                label = "/".join(str(entry.get(k) or "") for k in ("provider", "host", "id"))
                raise ValidationError(f"Entry {index} ({label}): {describe(exc)}") from None
    return saved


def describe(error: ValidationError) -> str:
    if hasattr(error, "message_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items())
    return " ".join(error.messages)
