"""``koop_admin_user --from-env``: the container start's admin user, from the environment only."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("koop_admin_user", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def clean_env(monkeypatch, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    for name in ("KOOP_ADMIN_USER", "KOOP_ADMIN_PASSWORD", "DJANGO_SUPERUSER_USERNAME",
                 "DJANGO_SUPERUSER_PASSWORD", "DJANGO_SUPERUSER_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.django_db
def test_without_a_password_nothing_is_created_generated_or_stored(clean_env, tmp_path):
    output = run("--from-env")
    assert "no admin user created" in output
    assert not get_user_model().objects.exists()
    assert not (tmp_path / "admin_password").exists()


@pytest.mark.django_db
def test_the_password_from_the_environment_is_used_and_never_printed(clean_env):
    clean_env.setenv("KOOP_ADMIN_USER", "gis")
    clean_env.setenv("KOOP_ADMIN_PASSWORD", "first-Secret-9")
    output = run("--from-env")
    assert "'gis'" in output and "first-Secret-9" not in output
    user = get_user_model().objects.get(username="gis")
    assert user.is_superuser and user.check_password("first-Secret-9")
    # A restart with a new password in .env sets it: the env file is the source of truth.
    clean_env.setenv("KOOP_ADMIN_PASSWORD", "second-Secret-9")
    run("--from-env")
    user.refresh_from_db()
    assert user.check_password("second-Secret-9")
    assert get_user_model().objects.count() == 1


@pytest.mark.django_db
def test_djangos_superuser_variables_work_too(clean_env):
    clean_env.setenv("DJANGO_SUPERUSER_USERNAME", "root-gis")
    clean_env.setenv("DJANGO_SUPERUSER_PASSWORD", "a-Secret-9")
    clean_env.setenv("DJANGO_SUPERUSER_EMAIL", "gis@example.org")
    assert "a-Secret-9" not in run("--from-env")
    user = get_user_model().objects.get(username="root-gis")
    assert user.email == "gis@example.org" and user.check_password("a-Secret-9")
