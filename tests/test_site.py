"""The site: settings from the environment, and the run command's steps serving the demo."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import orjson
import pytest

from koop_app.siteload import ServedSite

ROOT = Path(__file__).resolve().parent.parent
SHOW = ("from django.conf import settings; import orjson; print(orjson.dumps({"
        "'db': settings.DATABASES['default']['ENGINE'], "
        "'name': str(settings.DATABASES['default']['NAME']), "
        "'cache': settings.CACHES['default']['BACKEND'], "
        "'broker': settings.CELERY_BROKER_URL, 'debug': settings.DEBUG}).decode())")


def settings_with(env: dict[str, str], tmp_path: Path) -> dict:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_DEBUG", "CELERY_BROKER_URL")}
    clean.update({"KOOP_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "koopsite.settings",
                  **env})
    out = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {SHOW}"],
                         cwd=ROOT, env=clean, capture_output=True, text=True, check=True)
    return orjson.loads(out.stdout.strip().splitlines()[-1])


def test_embedded_defaults(tmp_path):
    found = settings_with({}, tmp_path)
    assert found["db"] == "django.db.backends.sqlite3"
    assert found["name"] == str(tmp_path / "db.sqlite3")
    assert found["cache"] == "koop_app.filecache.FileCache"  # FileBasedCache, no zlib again
    assert found["debug"] is False


def test_database_and_redis_urls_switch_backends(tmp_path):
    found = settings_with({"DATABASE_URL": "postgres://koop:pw@127.0.0.1:5432/koop",
                           "REDIS_URL": "redis://127.0.0.1:6379/1", "DJANGO_DEBUG": "1"},
                          tmp_path)
    assert found["db"] == "django.db.backends.postgresql"
    assert found["name"] == "koop"
    assert found["cache"] == "django_redis.cache.RedisCache"
    assert found["broker"] == "redis://127.0.0.1:6379/1"
    assert found["debug"] is True


@pytest.mark.slow
def test_run_steps_serve_the_demo(tmp_path):
    """What `make run` does after installing: migrate, demo data, admin user, serve."""
    env = {**os.environ, "KOOP_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE":
           "koopsite.settings", "KOOP_ADMIN_PASSWORD": "pw-for-test"}
    env.pop("KOOP_DATA_DIR", None)
    manage = [sys.executable, "manage.py"]
    for step in (["migrate", "--noinput"], ["koop_demo"], ["koop_admin_user"]):
        subprocess.run(manage + step, cwd=ROOT, env=env, check=True, capture_output=True)
    with ServedSite(env) as site:
        base = f"http://127.0.0.1:{site.port}"
        url = base + "/geojson/rest/services/places/FeatureServer/0/query?where=1=1&f=json"
        body = orjson.loads(urllib.request.urlopen(url, timeout=30).read())
        assert len(body["features"]) == 2000
        url = base + "/csv/rest/services/zones/FeatureServer/0/query?where=1=1&f=geojson"
        body = orjson.loads(urllib.request.urlopen(url, timeout=30).read())
        assert body["features"][0]["geometry"]["type"] == "Polygon"
        login = urllib.request.urlopen(base + "/admin/login/", timeout=10).read().decode()
        assert "csrfmiddlewaretoken" in login


def deploy_check(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "KOOP_"))}
    clean.update({"KOOP_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "koopsite.settings",
                  **env})
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level",
                           "WARNING"], cwd=ROOT, env=clean, capture_output=True, text=True)


def test_deploy_check_is_clean_when_served_over_https(tmp_path):
    """Production settings: DEBUG off (the default), DJANGO_SECURE=1, a secret from the env."""
    result = deploy_check({"DJANGO_SECURE": "1", "DJANGO_ALLOWED_HOSTS": "geo.example.org",
                           "DJANGO_SECRET_KEY": "k" * 20 + "-not-a-real-key-" + "9" * 30},
                          tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_deploy_check_names_what_plain_http_lacks(tmp_path):
    result = deploy_check({}, tmp_path)
    assert result.returncode != 0
    assert "SECURE_SSL_REDIRECT" in result.stderr and "SECURE_HSTS_SECONDS" in result.stderr


def test_compose_takes_secrets_and_hosts_from_the_env_file():
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "env_file: .env" in compose
    for secret in ("SECRET_KEY", "postgres://", "ALLOWED_HOSTS"):
        assert secret not in compose, secret
    # Passwords only as ${NAME} from .env (tests/test_deploy_files.py checks every value).
    assert re.findall(r"PASSWORD: (\S+)", compose) == ["${POSTGRES_PASSWORD:?set"]
    assert "scripts/start-web" in compose  # migrations, admin user, gunicorn behind nginx
    example = (ROOT / ".env.example").read_text()
    for key in ("DJANGO_SECRET_KEY=", "DJANGO_ALLOWED_HOSTS=", "POSTGRES_PASSWORD=",
                "DATABASE_URL="):
        assert key in example
    assert "DJANGO_ALLOWED_HOSTS=*" not in example.replace(" ", "")


def test_make_run_serves_with_debug_off_on_the_shared_server_script():
    makefile = (ROOT / "Makefile").read_text()
    run = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "DJANGO_DEBUG" not in run  # off unless the caller sets DJANGO_DEBUG=1
    assert "scripts/run-embedded" in run
    assert '"$(dirname "$0")/serve"' in (ROOT / "scripts" / "run-embedded").read_text()
