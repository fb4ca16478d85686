"""Settings read from the environment.

With nothing set the site runs on embedded defaults: SQLite and Django's file-based cache under
``KOOP_VAR_DIR`` (``./var``). ``DATABASE_URL`` switches to PostgreSQL (or any dj-database-url
URL) and ``REDIS_URL`` to django-redis for the cache and Redis as the Celery broker.

    DJANGO_DEBUG=1 DATABASE_URL=postgres://koop@127.0.0.1/koop REDIS_URL=redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
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
ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_celery_beat",
    "koop_app",
]

MIDDLEWARE = [
    # First, so that under /rest/ every answer, other middleware's included, is GeoServices JSON.
    "koop_app.outputs.geoservices.middleware.GeoServicesErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
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
STATIC_ROOT = VAR_DIR / "static"

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
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

DATA_DIR = Path(os.environ.get("KOOP_DATA_DIR", VAR_DIR / "data"))
if "KOOP_DATA_DIR" not in os.environ:
    DATA_DIR.mkdir(parents=True, exist_ok=True)

KOOP = {
    "PROVIDERS": _env_list(
        "KOOP_PROVIDERS",
        ["providers.geojson.GeoJSONProvider", "providers.csv_.CSVProvider",
         "providers.records.RecordsProvider"],
    ),
    "DATA_DIR": str(DATA_DIR),
}

# Structured logs: one JSON object a line (KOOP_LOG_FORMAT=json, the default) for log
# collectors, or text with the same fields as key=value (KOOP_LOG_FORMAT=plain).
_LOG_FORMAT = os.environ.get("KOOP_LOG_FORMAT", "json")
_LOG_HANDLER = {"handlers": ["console"], "level": os.environ.get("KOOP_LOG_LEVEL", "INFO")}
# django-redis reports the cache errors it ignores through this logger.
DJANGO_REDIS_LOGGER = "koop_app.cache"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "koop_app.logs.JSONFormatter"},
        "plain": {"()": "koop_app.logs.PlainFormatter",
                  "format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler",
                             "formatter": "plain" if _LOG_FORMAT == "plain" else "json"}},
    # Workers and beat use this too (koopsite/celery.py): Celery's own lines come out alike.
    "loggers": {"koop_app": _LOG_HANDLER, "celery": _LOG_HANDLER},
}
