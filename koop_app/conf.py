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
    # Output modules (each with a ``routes`` table), mounted for every provider; installed
    # packages add the "koop.outputs" group.
    "OUTPUTS": ["koop_app.outputs.geoservices", "koop_app.outputs.pages",
                "koop_app.outputs.vectortiles", "koop_app.outputs.wfs", "koop_app.outputs.wms",
                "koop_app.outputs.ogcapi", "koop_app.outputs.flat"],
    "OUTPUT_ENTRY_POINT_GROUP": "koop.outputs",
    # Named connections to the servers some providers read (the ``:host`` of their routes):
    # {"postgis": {"gis": {"dsn": "postgresql://..."}}, "elasticsearch": {"logs": {"url": ..,
    # "api_key": ..}}}. Secrets stay in settings (from the environment), never in the database
    # or the admin; see koop_app/connections.py.
    "CONNECTIONS": {},
    # Local files that providers may read; paths outside it are refused.
    "DATA_DIR": None,
    # The largest file the admin's upload takes into DATA_DIR (bytes): a larger Content-Length
    # is refused before the body is read, and the stream is cut when it grows past it. A proxy
    # in front (nginx's client_max_body_size, Caddy's request_body max_size) must allow as much.
    "MAX_UPLOAD_BYTES": 200 * 1024 * 1024,
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
    # /health says "degraded" when a refresh made no progress for this long (seconds).
    "REFRESH_STUCK_SECONDS": 300,
    # After a failed refresh of an expired copy, ask the source again only this often.
    "REVALIDATE_BACKOFF_SECONDS": 30,
    # The shortest interval between scheduled refreshes of one dataset (seconds).
    "MIN_REFRESH_SECONDS": 30,
    # How often a process asks the data cache whether a dataset has a new version (seconds).
    "POINTER_CHECK_SECONDS": 1.0,
    # How long a process remembers a route's Dataset row and cleaned options (seconds; changes
    # saved in the same process are seen at once). 0: read them on every request.
    "DATASET_LOOKUP_SECONDS": 1.0,
    # Memory budget for decoded tables kept in each process.
    "HOT_TABLES_MAX_BYTES": 2 * 1024**3,
    # Where stored layers are materialised once per host as DuckDB files that every process
    # attaches read-only (one copy for all workers). None: <settings.VAR_DIR>/hot (else a folder
    # in the system's temporary directory); False: in-memory tables in each process.
    "HOT_DIR": None,
    # Row order of hot files. "cells" (default): ids ascending within coarse Hilbert cells of
    # the features' box centres, 4^k cells of >= ~490k rows (so the source's id order below ~2M
    # rows): map tiles read their cell, pages ordered by id the first row groups of each cell.
    # None: the source's order (fastest pages, tiles read every row); "hilbert": along the
    # curve (fastest tiles, pages read every row). bench/RESULTS.md, "Hot files".
    "HOT_ORDER": "cells",
    # Compress the floating-point and text columns of hot files (DuckDB's ALP and FSST). Off:
    # stored plain, files ~2x larger, but every query that decodes them is faster (1M points:
    # 500 objectIds 31 -> 16 ms, a LIKE page 11 -> 8 ms; 10M: a count with a where 34 -> 23 ms).
    "HOT_COMPRESS": False,
    # A refresh that keeps no hot copy (a worker, koop_refresh) builds the new version's hot
    # file for the web processes sharing HOT_DIR, so no request waits for that build.
    "HOT_PREBUILD": True,
    # Disk budget of HOT_DIR: beyond it, files no process uses go, least recently used first.
    "HOT_DISK_MAX_BYTES": None,
    # Each process's DuckDB: memory limit (e.g. "512MB"; None: DuckDB's default of 80% of RAM)
    # and threads (None: one per core). Attached files are read into this memory as queried.
    "DUCKDB_MEMORY_LIMIT": None,
    "DUCKDB_THREADS": None,
    # How many rows one query may return at most, whatever maxRecordCount says.
    "MAX_RESULT_RECORDS": 100_000,
    # The most rows one CSV / JSON records export (koop_app/outputs/flat) may hold. Exports
    # read every matching row, not one page of maxRecordCount, streamed in chunks of the
    # engine's pages; a query matching more is refused upfront (HTTP 400, problem JSON with
    # the count) so that a file is never cut short silently.
    "EXPORT_MAX_ROWS": 1_000_000,
    # --- Token security and per-dataset access (koop_app/auth) ---
    # Advertise ArcGIS token security in /rest/info and serve generateToken. Off: no token
    # service; datasets that are not public are then readable by admin sessions only.
    "TOKEN_SECURITY": True,
    # Minutes a token lives when generateToken is given no expiration (shortLivedTokenValidity).
    "TOKEN_DEFAULT_MINUTES": 60,
    # The longest expiration generateToken grants; longer requests are cut to this.
    "TOKEN_MAX_MINUTES": 1440,
    # generateToken over GET (ArcGIS Server's opt-in): credentials in URLs end up in logs.
    "TOKEN_ALLOW_GET": False,
    # Refuse generateToken on plain HTTP (set it behind TLS; see SECURE_PROXY_SSL_HEADER).
    "TOKEN_HTTPS_ONLY": False,
    # Staff signed in to the admin read secured datasets with their session (admin previews).
    "SESSION_ACCESS": True,
    # --- Safe fetching (issue 8, point 4; koop_app/net) ---
    # CIDRs that sources may be fetched from although loopback/private/reserved, e.g.
    # ["10.1.0.0/16"]; empty: public addresses only. Matched against the real address
    # (::ffff:10.1.2.3 is 10.1.2.3).
    "ALLOWED_SOURCE_NETWORKS": [],
    # Redirects followed by one fetch; each target is checked like the first URL.
    "MAX_REDIRECTS": 5,
    # Wall clock of one whole fetch: DNS, connections, redirects and body (seconds).
    "MAX_FETCH_SECONDS": 120.0,
    # CA bundle (PEM file) trusted for https sources; None: certifi's bundle.
    "SOURCE_CA_BUNDLE": None,
    # --- Bounded cost per request (issue 8, point 5) ---------------------------------------
    # Each limit answers a GeoServices 400 naming the parameter and the limit when exceeded.
    # Characters in ``where`` and ``havingClause`` (and queryRelatedRecords' definitionExpression).
    "MAX_WHERE_LENGTH": 30_000,
    # Nodes of a clause's parsed tree (fields, literals, operators, calls) and their nesting.
    "MAX_WHERE_NODES": 3_000,
    "MAX_WHERE_DEPTH": 32,
    # Arithmetic operators and function calls of a clause: each is evaluated on every row, so
    # 450 of them over a million rows take seconds (32: ~0.1 s) where comparisons and IN lists
    # do not.
    "MAX_WHERE_COMPUTATIONS": 32,
    # Values in one ``IN (...)`` list of a clause: clients send long id lists as objectIds.
    "MAX_IN_LIST": 2_000,
    # Ids in ``objectIds`` (query and queryRelatedRecords).
    "MAX_OBJECT_IDS": 100_000,
    # Vertices (positions) of the ``geometry`` filter, and its parts (rings, paths).
    "MAX_GEOMETRY_VERTICES": 100_000,
    "MAX_GEOMETRY_PARTS": 10_000,
    # Entries of ``outStatistics``, and fields of groupByFieldsForStatistics, orderByFields and
    # outFields.
    "MAX_STATISTICS": 64,
    "MAX_GROUP_BY_FIELDS": 16,
    "MAX_ORDER_BY_FIELDS": 16,
    "MAX_OUT_FIELDS": 1_000,
    # No single DuckDB statement of a request runs longer than this (seconds); None: no limit.
    "QUERY_TIMEOUT_SECONDS": 10.0,
    # Memory for built vector tiles kept in each process, by (dataset, data version, z/x/y).
    "VECTOR_TILE_CACHE_BYTES": 64 * 1024**2,
    # Requests per client and window, e.g. "600/minute" (also /second, /hour); None: off.
    # Counted in Django's default cache, so shared by all processes when it is Redis.
    "RATE_LIMIT": None,
    # Networks of reverse proxies whose Forwarded / X-Forwarded-* headers are believed: the
    # scheme, host and prefix of the URLs we write and the client's address (rate limit, login
    # throttle) come from them (koop_app/forwarded.py). Loopback by default: the documented
    # set-up is Caddy or nginx on the same host, and only a process on this host can connect
    # from loopback, which could reach the app directly anyway. A proxy on another host (a
    # load balancer, another container) is added here, e.g. ["10.0.0.0/8"]; []: no proxy.
    "TRUSTED_PROXIES": ["127.0.0.0/8", "::1/128"],
    # --- Request limits under /rest/ (issue 8: errors) ---
    # The longest URL (path + query string) a GeoServices route reads; longer is a code 400
    # that tells the client to POST. The web server's own limit must be larger than this.
    "MAX_URL_BYTES": 16 * 1024,
    # The largest request body a GeoServices route reads, refused from Content-Length before
    # reading. Django's DATA_UPLOAD_MAX_MEMORY_SIZE bounds the form fields too (a code 400).
    "MAX_REQUEST_BODY_BYTES": 10 * 1024 * 1024,
    # --- Pages for people (koop_app/outputs/pages) ---
    # The map previews' basemap: {"url": "https://tile.example.org/{z}/{x}/{y}.png",
    # "attribution": "..."} (Leaflet's tile URL template); None: no basemap, no tile requests,
    # the features alone on a plain background (works offline).
    "PREVIEW_BASEMAP": None,
}


class KoopSettings:
    """Attribute access to the KOOP dict with defaults, e.g. ``koop_settings.DATA_DIR``."""

    # The KOOP dict last checked for unknown keys, and its keys then: read on every request,
    # dozens of times, so the check runs again only when the dict or its keys change.
    _checked: tuple[dict[str, Any], int] | None = None

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Invalid KOOP setting: {name!r}")
        user = getattr(settings, "KOOP", {}) or {}
        checked = KoopSettings._checked
        if checked is None or checked[0] is not user or checked[1] != len(user):
            unknown = set(user) - set(DEFAULTS)
            if unknown:
                raise ImproperlyConfigured(
                    f"Unknown key(s) in settings.KOOP: {', '.join(sorted(unknown))}. "
                    f"Known keys: {', '.join(sorted(DEFAULTS))}."
                )
            KoopSettings._checked = (user, len(user))
        return user.get(name, DEFAULTS[name])

    @property
    def validate_geojson(self) -> bool:
        value = self.VALIDATE_GEOJSON
        return bool(settings.DEBUG) if value is None else bool(value)


koop_settings = KoopSettings()
