"""The dataset of a route and its cleaned options, remembered briefly by each process.

Reading the Dataset row (with its provider) was half the server time of a small request, and
cleaning its options (a local path resolved, a source host name looked up in DNS) another
tenth, on every request. Both are remembered here for KOOP["DATASET_LOOKUP_SECONDS"]:

- a change saved in this process (admin, commands, tasks) is seen at once: the post_save and
  post_delete signals of datasets and providers, and changes to a dataset's allowed users or
  groups, empty the memory;
- another process sees it within that interval (as it sees a new data version within
  KOOP["POINTER_CHECK_SECONDS"]); 0 turns the memory off.

Each request gets its own copy of the row, so nothing it sets on it reaches other requests.
Who may read a restricted dataset is still asked of the database on every request.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

import orjson

from koop_app.conf import koop_settings
from koop_app.models import Dataset

_lock = threading.Lock()
# (provider, host, id) -> (monotonic time read, row or None for "no such dataset")
_rows: dict[tuple[str, str, str], tuple[float, Dataset | None]] = {}
# (dataset pk, provider name, options as JSON) -> (monotonic time cleaned, cleaned options)
_options: dict[tuple[Any, str, bytes], tuple[float, dict[str, Any]]] = {}
MAX_ENTRIES = 10_000  # beyond this many routes remembered, start again (unknown ids included)


def _seconds() -> float:
    return float(koop_settings.DATASET_LOOKUP_SECONDS)


def find_dataset(provider: str, host: str, dataset_id: str) -> Dataset:
    """The enabled dataset of a route (a copy of its row), or Dataset.DoesNotExist."""
    key = (provider, host, dataset_id)
    seconds = _seconds()
    now = time.monotonic()
    seen = _rows.get(key)
    if seen is None or now - seen[0] >= seconds:
        try:
            row: Dataset | None = Dataset.objects.select_related("provider").get(
                provider__name=provider, provider__enabled=True, enabled=True,
                host=host, dataset_id=dataset_id)
        except Dataset.DoesNotExist:
            row = None
        if seconds > 0:
            with _lock:
                if len(_rows) >= MAX_ENTRIES:
                    _rows.clear()
                _rows[key] = (now, row)
        seen = (now, row)
    if seen[1] is None:
        raise Dataset.DoesNotExist
    return _copy(seen[1])


def _copy(row: Any) -> Any:
    """A copy of a model instance and of the related rows it holds (the provider)."""
    clone = type(row).__new__(type(row))
    clone.__dict__.update(row.__dict__)
    clone._state = copy.copy(row._state)
    clone._state.fields_cache = {name: _copy(value) if value is not None else None
                                 for name, value in row._state.fields_cache.items()}
    return clone


def clean_options(dataset: Dataset) -> dict[str, Any]:
    """``dataset.provider.plugin.clean_options(dataset.options)``, remembered like the rows.

    Raises what ``clean_options`` raises (never remembered). The fetch checks a source again
    when it reads it, so a remembered answer never lets a refused location through.
    """
    plugin = dataset.provider.plugin
    seconds = _seconds()
    if seconds <= 0:
        return plugin.clean_options(dataset.options)
    key = (dataset.pk, dataset.provider.name,
           orjson.dumps(dataset.options, option=orjson.OPT_SORT_KEYS, default=str))
    now = time.monotonic()
    seen = _options.get(key)
    if seen is None or now - seen[0] >= seconds:
        seen = (now, plugin.clean_options(dataset.options))
        with _lock:
            if len(_options) >= MAX_ENTRIES:
                _options.clear()
            _options[key] = seen
    return dict(seen[1])


def clear(*args: Any, **kwargs: Any) -> None:
    """Forget every remembered row and options (signal receiver, tests)."""
    with _lock:
        _rows.clear()
        _options.clear()


def connect_signals() -> None:
    from django.core.signals import setting_changed
    from django.db.models.signals import m2m_changed, post_delete, post_save

    from koop_app.models import Provider

    for signal in (post_save, post_delete):
        for sender in (Dataset, Provider):
            signal.connect(clear, sender=sender, dispatch_uid=f"koop_lookup_{signal}_{sender}")
    for relation in (Dataset.allowed_users.through, Dataset.allowed_groups.through):
        m2m_changed.connect(clear, sender=relation, dispatch_uid=f"koop_lookup_m2m_{relation}")
    setting_changed.connect(clear, dispatch_uid="koop_lookup_settings")
