"""The app's settings: one ``KOOP`` dict in Django settings, read through ``koop_settings``.

    KOOP = {
        "PROVIDERS": ["providers.geojson.GeoJSONProvider"],
        "DATA_DIR": "/srv/geodata",
        "MAX_DOWNLOAD_BYTES": 200 * 1024 * 1024,
    }

Every key has a default below; an unknown key fails loudly so that a typo is not silently
ignored. Values are read on each access, so ``override_settings(KOOP=...)`` works in tests.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, Any] = {
    # Dotted paths of Provider subclasses; installed packages add the "koop.providers" group.
    "PROVIDERS": [],
    "ENTRY_POINT_GROUP": "koop.providers",
    # Output modules (each with a ``routes`` table), mounted for every provider.
    "OUTPUTS": ["koop_app.outputs.geoservices"],
    # Local files that providers may read; paths outside it are refused.
    "DATA_DIR": None,
    # Remote sources: (connect, read) timeouts in seconds and the largest body accepted.
    "CONNECT_TIMEOUT": 5.0,
    "READ_TIMEOUT": 30.0,
    "MAX_DOWNLOAD_BYTES": 512 * 1024 * 1024,
    # Cache time-to-live for datasets that set none (seconds).
    "DEFAULT_TTL": 3600,
    "DEFAULT_MAX_RECORD_COUNT": 2000,
    # Validate GeoJSON from providers and log problems; None means "when DEBUG".
    "VALIDATE_GEOJSON": None,
    # Single flight: the longest a first fetch may hold the lock, and how long others wait.
    "FETCH_LOCK_SECONDS": 300,
    "FETCH_WAIT_SECONDS": 60,
    # After a failed refresh of an expired copy, ask the source again only this often.
    "REVALIDATE_BACKOFF_SECONDS": 30,
    # The shortest interval between scheduled refreshes of one dataset (seconds).
    "MIN_REFRESH_SECONDS": 30,
    # How often a process asks the data cache whether a dataset has a new version (seconds).
    "POINTER_CHECK_SECONDS": 1.0,
    # Memory budget for decoded tables kept in each process.
    "HOT_TABLES_MAX_BYTES": 2 * 1024**3,
    # How many rows one query may return at most, whatever maxRecordCount says.
    "MAX_RESULT_RECORDS": 100_000,
    # --- Request limits under /rest/ (issue 8: errors) ---
    # The longest URL (path + query string) a GeoServices route reads; longer is a code 400
    # that tells the client to POST. The web server's own limit must be larger than this.
    "MAX_URL_BYTES": 16 * 1024,
    # The largest request body a GeoServices route reads, refused from Content-Length before
    # reading. Django's DATA_UPLOAD_MAX_MEMORY_SIZE bounds the form fields too (a code 400).
    "MAX_REQUEST_BODY_BYTES": 10 * 1024 * 1024,
}


class KoopSettings:
    """Attribute access to the KOOP dict with defaults, e.g. ``koop_settings.DATA_DIR``."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Invalid KOOP setting: {name!r}")
        user = getattr(settings, "KOOP", {}) or {}
        unknown = set(user) - set(DEFAULTS)
        if unknown:
            raise ImproperlyConfigured(
                f"Unknown key(s) in settings.KOOP: {', '.join(sorted(unknown))}. "
                f"Known keys: {', '.join(sorted(DEFAULTS))}."
            )
        return user.get(name, DEFAULTS[name])

    @property
    def validate_geojson(self) -> bool:
        value = self.VALIDATE_GEOJSON
        return bool(settings.DEBUG) if value is None else bool(value)


koop_settings = KoopSettings()
