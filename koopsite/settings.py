"""Settings read from the environment.

With nothing set the site runs on embedded defaults: SQLite and Django's file-based cache under
``KOOP_VAR_DIR`` (``./var``). ``DATABASE_URL`` switches to PostgreSQL (or any dj-database-url
URL) and ``REDIS_URL`` to django-redis for the cache and Redis as the Celery broker.

    DJANGO_DEBUG=1 DATABASE_URL=postgres://koop@127.0.0.1/koop REDIS_URL=redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name, "")
    return [item.strip() for item in value.split(",") if item.strip()] or default


VAR_DIR = Path(os.environ.get("KOOP_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = _env_bool("DJANGO_DEBUG")


def _secret_key() -> str:
    """Use DJANGO_SECRET_KEY, else a random key kept under VAR_DIR so sessions survive restarts."""
    if os.environ.get("DJANGO_SECRET_KEY"):
        return os.environ["DJANGO_SECRET_KEY"]
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(get_random_secret_key())
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
# Explicit host names only (never "*"): the local ones by default, the public name from the env.
ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "corsheaders",
    "django_celery_beat",
    "koop_app",
    "axes",  # login throttling (see "Admin hardening" below)
]

MIDDLEWARE = [
    # Outermost: CORS headers on every /rest/ answer, refusals and errors included; answers
    # browsers' preflight requests itself.
    "corsheaders.middleware.CorsMiddleware",
    # Next, so that under /rest/ every answer, other middleware's included, is GeoServices JSON.
    "koop_app.outputs.geoservices.middleware.GeoServicesErrorMiddleware",
    # A trusted proxy's Forwarded / X-Forwarded-* (KOOP['TRUSTED_PROXIES']) set the scheme, host
    # and client before anything reads them (https redirects, the rate limit, absolute URLs).
    "koop_app.forwarded.ForwardedMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's CSS and JS) straight from STATIC_ROOT, with DEBUG off too.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before sessions and views: a refused request costs one cache increment (KOOP['RATE_LIMIT']).
    "koop_app.ratelimit.RateLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks: turns a lockout into a page
]

# Form bodies up to KOOP["MAX_REQUEST_BODY_BYTES"] (ArcGIS clients POST long geometries and id
# lists); Django's default of 2.5 MB would refuse them first.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

ROOT_URLCONF = "koopsite.urls"
WSGI_APPLICATION = "koopsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}", conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web processes, the worker and beat share the file: WAL lets readers run beside a writer,
    # IMMEDIATE transactions take the write lock up front (waiting up to the timeout) instead of
    # failing at once with "database is locked" when a read transaction turns into a write.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE",
                                       "init_command": "PRAGMA journal_mode=WAL;"}

REDIS_URL = os.environ.get("REDIS_URL", "")
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            # An outage is a cache miss (logged), never an error for the client.
            "OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": 1,
                        "SOCKET_TIMEOUT": 2},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "koop_app.filecache.FileCache",
            "LOCATION": str(VAR_DIR / "cache"),
            "OPTIONS": {"MAX_ENTRIES": 10000},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
# Filled by collectstatic: scripts/serve runs it at start; the Docker image at build, into
# KOOP_STATIC_ROOT (outside the var volume, so a new image brings its own files).
STATIC_ROOT = Path(os.environ.get("KOOP_STATIC_ROOT") or VAR_DIR / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns about a missing folder

# --- Admin hardening (issue 8): login throttling and HTTPS-only settings -----------------------
# django-axes counts failed logins per (username, client address) pair: after
# KOOP_LOGIN_FAILURE_LIMIT failures that pair is locked out for KOOP_LOGIN_COOLOFF_MINUTES, with
# a clear page (HTTP 429). Other users, and the same user from another address, can still sign
# in, so nobody can lock the real administrator out. The address is REMOTE_ADDR: the socket's,
# or the client a trusted proxy names (koop_app/forwarded.py); no other client header counts.
AUTHENTICATION_BACKENDS = ["koop_app.login_throttle.LoginThrottleBackend",
                           "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = int(os.environ.get("KOOP_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("KOOP_LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "koop_app/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # a lockout ends when it said it would

# Served over HTTPS (DJANGO_SECURE=1): redirect http to https, HSTS, cookies sent over HTTPS
# only; `manage.py check --deploy` is then clean. Behind a proxy that terminates TLS, the
# proxy's X-Forwarded-Proto / Forwarded tells the app the request was HTTPS when the proxy is
# in KOOP_TRUSTED_PROXIES (loopback by default). DJANGO_PROXY_SSL_HEADER=1 is Django's older
# switch: it believes X-Forwarded-Proto from any sender, so only for a proxy that always sets it.
SECURE = _env_bool("DJANGO_SECURE")
SECURE_SSL_REDIRECT = SECURE
SECURE_REDIRECT_EXEMPT = [r"^health$"]  # probes from inside the network speak plain HTTP
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000")) if SECURE else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
SECURE_HSTS_PRELOAD = SECURE and _env_bool("DJANGO_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
if _env_bool("DJANGO_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = _env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# GeoServices answers are public data read by browser clients on any origin (ArcGIS Online's
# Map Viewer, apps built with the ArcGIS Maps SDK): any origin, no cookies. Tokens travel in
# parameters or headers, so credentialed requests are not needed.
CORS_ALLOW_ALL_ORIGINS = True
CORS_URLS_REGEX = r"^(?:.*/)?rest(?:/.*)?$"  # a path with a "rest" segment, as the middleware
CORS_ALLOW_METHODS = ("GET", "POST", "OPTIONS")
CORS_ALLOW_HEADERS = ("content-type", "authorization", "x-esri-authorization",
                      "x-requested-with", "if-none-match", "if-modified-since")
CORS_EXPOSE_HEADERS = ("Retry-After", "ETag", "Last-Modified")
CORS_PREFLIGHT_MAX_AGE = 86400

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}

# Celery: Redis when REDIS_URL is set; "filesystem://" is the embedded broker that `make run`
# uses for its worker and beat (a folder under KOOP_VAR_DIR, no server); with no broker at all
# tasks run in the calling process.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL.startswith("memory://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _QUEUE = VAR_DIR / "broker" / "queue"
    _QUEUE.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(_QUEUE),
                                       "data_folder_out": str(_QUEUE),
                                       "store_processed": False,
                                       # kombu's default is "control" in the working directory
                                       "control_folder": str(VAR_DIR / "broker" / "control")}
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Refreshes are acknowledged after they ran (koop_app/tasks.py): Redis gives an unacked
    # task to another worker after this many seconds. It must exceed the longest retry delay
    # (an hour) plus a refresh, or a waiting retry would also run elsewhere.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": int(os.environ.get("KOOP_TASK_VISIBILITY_TIMEOUT", "7200"))}
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

DATA_DIR = Path(os.environ.get("KOOP_DATA_DIR", VAR_DIR / "data"))
if "KOOP_DATA_DIR" not in os.environ:
    DATA_DIR.mkdir(parents=True, exist_ok=True)

def _env_json(name: str, default: dict) -> dict:
    """A JSON object from the environment (KOOP_CONNECTIONS), or ``default`` when unset."""
    import json

    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object")
    return value


KOOP = {
    # Servers that providers with a :host read, by provider and name (koop_app/connections.py).
    "CONNECTIONS": _env_json("KOOP_CONNECTIONS", {}),
    "PROVIDERS": _env_list(
        "KOOP_PROVIDERS",
        ["providers.geojson.GeoJSONProvider",
         "providers.csv_.CSVProvider",
         "providers.records.RecordsProvider",
         "providers.s3.S3Provider",
         "providers.googleanalytics.GoogleAnalyticsProvider",
         "providers.github.GitHubProvider",
         "providers.arcgis.ArcGISProvider",
         "providers.elasticsearch.ElasticsearchProvider",
         "providers.marklogic.MarkLogicProvider",
         "providers.postgis.PostGISProvider"],
    ),
    "DATA_DIR": str(DATA_DIR),
    # Networks sources may be fetched from although private/loopback (comma-separated CIDRs).
    "ALLOWED_SOURCE_NETWORKS": _env_list("KOOP_ALLOWED_SOURCE_NETWORKS", []),
    # Hot layers as DuckDB files shared by the host's processes (default VAR_DIR/hot; "off":
    # in-memory tables in each process), and each process's DuckDB memory and threads.
    "HOT_DIR": {"off": False, "": None}.get(os.environ.get("KOOP_HOT_DIR", ""),
                                             os.environ.get("KOOP_HOT_DIR")),
    "HOT_ORDER": {"source": None}.get(os.environ.get("KOOP_HOT_ORDER", "cells"),
                                      os.environ.get("KOOP_HOT_ORDER", "cells")),
    "DUCKDB_MEMORY_LIMIT": os.environ.get("KOOP_DUCKDB_MEMORY_LIMIT") or None,
    "DUCKDB_THREADS": int(os.environ["KOOP_DUCKDB_THREADS"])
    if os.environ.get("KOOP_DUCKDB_THREADS") else None,
}

# Reverse proxies whose forwarded headers are believed (comma-separated CIDRs; "none": no
# proxy). Unset: loopback, for Caddy or nginx on this host (README, "HTTPS and ArcGIS").
if os.environ.get("KOOP_TRUSTED_PROXIES", "").strip():
    KOOP["TRUSTED_PROXIES"] = [] if os.environ["KOOP_TRUSTED_PROXIES"].strip() == "none" \
        else _env_list("KOOP_TRUSTED_PROXIES", [])

# Logs: readable text on a terminal, one JSON object a line anywhere else (a pipe, a file, a
# container's log driver), decided per stream by koop_app.logs.ConsoleHandler. KOOP_LOG_FORMAT
# forces one: json (log collectors) or plain; unset or auto decides. Every logger goes through
# the root's handler: ours, Celery's, waitress's, and Django's errors, all in one format.
_LOG_FORMAT = os.environ.get("KOOP_LOG_FORMAT", "").strip().lower() or "auto"
if _LOG_FORMAT not in ("auto", "json", "plain"):
    raise ImproperlyConfigured(f"KOOP_LOG_FORMAT must be json, plain or auto (or unset), "
                               f"not {os.environ['KOOP_LOG_FORMAT']!r}")
_LOG_LEVEL = {"level": os.environ.get("KOOP_LOG_LEVEL", "INFO").strip().upper() or "INFO"}
# django-redis reports the cache errors it ignores through this logger.
DJANGO_REDIS_LOGGER = "koop_app.cache"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"()": "koop_app.logs.ConsoleHandler", "log_format": _LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    # Workers and beat use this too (koopsite/celery.py): Celery's own lines come out alike.
    # "django" loses its DEBUG-only console handler, which would print its lines twice.
    "loggers": {"koop_app": _LOG_LEVEL, "celery": _LOG_LEVEL,
                "django": {"handlers": [], "level": "INFO"}},
}
