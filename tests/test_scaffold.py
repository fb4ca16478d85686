"""``manage.py koop_new_provider``: the package it writes imports, keeps the contract, and its
own tests pass as generated (run in a fresh pytest process, as a developer runs them)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from koop_app.scaffold import ScaffoldError, plan_provider

ROOT = Path(__file__).resolve().parent.parent


def run_generated_tests(tests: Path, import_root: Path) -> subprocess.CompletedProcess[str]:
    """pytest on the generated tests alone, with the project's settings and a fresh var dir."""
    env = {k: v for k, v in os.environ.items() if k != "KOOP_VAR_DIR"}
    env["PYTHONPATH"] = os.pathsep.join([str(import_root), str(ROOT)])
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error",
         "--ds=tests.settings", str(tests)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def project(tmp_path, settings) -> Path:
    """A project folder with a ``plugins`` package, as BASE_DIR."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "__init__.py").write_text("")
    settings.BASE_DIR = tmp_path
    return tmp_path


@pytest.mark.slow
def test_a_generated_provider_passes_its_own_tests(project):
    out = io.StringIO()
    call_command("koop_new_provider", "trail-sensors", "--directory",
                 str(project / "plugins"), stdout=out)
    package = project / "plugins" / "trail_sensors"
    assert sorted(p.relative_to(package).as_posix() for p in package.rglob("*")
                  if p.is_file()) == ["README.md", "__init__.py", "provider.py",
                                      "tests/__init__.py", "tests/test_provider.py"]
    assert 'add "plugins.trail_sensors.TrailSensorsProvider" to KOOP["PROVIDERS"]' in \
        out.getvalue()
    source = (package / "provider.py").read_text()
    assert 'name = "trail-sensors"' in source and 'cache_policy = "cached"' in source
    assert "plugins.trail_sensors.TrailSensorsProvider" in (package / "README.md").read_text()
    result = run_generated_tests(package / "tests", project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--config",
                           str(ROOT / "pyproject.toml"), str(package)],
                          capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout


@pytest.mark.slow
def test_a_pass_through_distribution_installs_by_entry_point(tmp_path, settings):
    settings.BASE_DIR = ROOT
    call_command("koop_new_provider", "river-gauges", "--pass-through", "--package",
                 "--directory", str(tmp_path), stdout=io.StringIO())
    distribution = tmp_path / "koop-provider-river-gauges"
    meta = tomllib.loads((distribution / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["koop.providers"] == {
        "river-gauges": "river_gauges:RiverGaugesProvider"}
    source = (distribution / "river_gauges" / "provider.py").read_text()
    assert 'cache_policy = "pass-through"' in source
    result = run_generated_tests(distribution / "river_gauges" / "tests", distribution)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout


def test_the_default_folder_is_the_projects_providers_package(tmp_path):
    (tmp_path / "providers").mkdir()
    (tmp_path / "providers" / "__init__.py").write_text("")
    plan = plan_provider("gauges", tmp_path / "providers", root=tmp_path)
    assert (plan.module, plan.class_name) == ("providers.gauges", "GaugesProvider")
    from koop_app.management.commands.koop_new_provider import default_directory
    assert default_directory(tmp_path) == tmp_path / "providers"
    assert default_directory(tmp_path / "providers") == tmp_path / "providers"


@pytest.mark.parametrize(("name", "message"), [
    ("geojson", "already registered"),
    ("Trails", "is not a provider name"),
    ("9lives", "is not a provider name"),
    ("import", "Python keyword"),
])
def test_bad_names_are_refused_and_nothing_is_written(tmp_path, name, message):
    with pytest.raises(CommandError, match=message):
        call_command("koop_new_provider", name, "--directory", str(tmp_path),
                     stdout=io.StringIO())
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_never_overwritten(tmp_path):
    (tmp_path / "gauges").mkdir()
    (tmp_path / "gauges" / "provider.py").write_text("# mine")
    with pytest.raises(CommandError, match="already exists"):
        call_command("koop_new_provider", "gauges", "--directory", str(tmp_path),
                     stdout=io.StringIO())
    assert (tmp_path / "gauges" / "provider.py").read_text() == "# mine"


def test_a_folder_outside_a_package_is_named_for_the_import_path(tmp_path):
    (tmp_path / "loose").mkdir()
    with pytest.raises(ScaffoldError, match="not a Python package"):
        plan_provider("gauges", tmp_path / "loose", root=tmp_path)
