"""Test settings: the embedded defaults (SQLite, file-based cache) under a temporary folder."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# The first process makes the folder and removes it at exit; the servers and workers that tests
# start inherit KOOP_VAR_DIR and share it.
if "KOOP_VAR_DIR" not in os.environ:
    _VAR = tempfile.mkdtemp(prefix="koop-test-")
    os.environ["KOOP_VAR_DIR"] = _VAR
    atexit.register(shutil.rmtree, _VAR, ignore_errors=True)

from koopsite.settings import *  # noqa: E402,F403
from koopsite.settings import ALLOWED_HOSTS, DATABASES, KOOP  # noqa: E402

DEBUG = False
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]  # Django's test client
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
KOOP = {**KOOP, "CONNECT_TIMEOUT": 1.0,
        "READ_TIMEOUT": float(os.environ.get("KOOP_TEST_READ_TIMEOUT", "1.5")),
        "MAX_DOWNLOAD_BYTES": 1_000_000,
        "MIN_REFRESH_SECONDS": int(os.environ.get("KOOP_MIN_REFRESH_SECONDS", "30")),
        # Sources are koop_app.testing.SourceServer on loopback; SSRF tests set this to [].
        "ALLOWED_SOURCE_NETWORKS": ["127.0.0.1/32", "::1/128"]}
KOOP["MAX_FETCH_SECONDS"] = KOOP["CONNECT_TIMEOUT"] + KOOP["READ_TIMEOUT"]
# A file, not memory, for the test database: Celery workers started by tests share it.
DATABASES["default"]["TEST"] = {"NAME": os.path.join(os.environ["KOOP_VAR_DIR"], "test.sqlite3")}
