"""The app as a package in someone else's project (README, "Use it in your own Django project").

The wheel is built from a copy of the repository, installed with ``--no-deps`` into a fresh
virtualenv that sees the shared virtualenv's packages (no download), and added to a project made
by ``django-admin startproject`` exactly as the README says: its snippets are read from the
README and appended to the project's files. Everything runs from the temporary folder with a
clean environment, so nothing of this repository (koopsite, tests, providers/) is importable.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import orjson
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("koop_app", "providers", "pyproject.toml", "setup.py", "README.md")
SECTION = "## Use it in your own Django project"

PARKS = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "properties": {"park_id": 1, "name": "Riverside", "acres": 12.5},
     "geometry": {"type": "Point", "coordinates": [-105.27, 40.01]}},
    {"type": "Feature", "properties": {"park_id": 2, "name": "Hilltop", "acres": 3.0},
     "geometry": {"type": "Point", "coordinates": [-105.25, 40.03]}},
    {"type": "Feature", "properties": {"park_id": 3, "name": "Old Mill", "acres": 7.25},
     "geometry": {"type": "Point", "coordinates": [-105.29, 40.02]}},
]}
STATIONS_CSV = "station,lat,lon,depth\nNorth,40.1,-105.2,11\nSouth,39.9,-105.3,7\n"

# The host project's own DRF defaults, hostile to anonymous readers: they must not reach the
# GeoServices routes (they have their own access checks).
HOST_DRF = '''
REST_FRAMEWORK = {
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.AnonRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"anon": "1/day"},
    "DEFAULT_VERSIONING_CLASS": "rest_framework.versioning.NamespaceVersioning",
}
'''

# Run inside the fresh virtualenv: where the app comes from, what its metadata declares and
# whether the installed distributions satisfy it, and which distributions its modules import.
INSPECT = r'''
import ast, importlib.metadata as md, importlib.util, json, sys
from packaging.requirements import Requirement
import koop_app

dist = md.distribution("koop-django")
unmet, declared = [], {"": set()}
for raw in dist.requires or []:
    req = Requirement(raw)
    extra = next((e for e in dist.metadata.get_all("Provides-Extra") or []
                  if req.marker and req.marker.evaluate({"extra": e})), "")
    declared.setdefault(extra, set()).add(req.name.lower().replace("_", "-"))
    try:
        version = md.version(req.name)
    except md.PackageNotFoundError:
        unmet.append(f"{raw}: not installed")
        continue
    if not req.specifier.contains(version, prereleases=True):
        unmet.append(f"{raw}: {version} installed")

def closure(names):
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for raw in md.distribution(name).requires or []:
            req = Requirement(raw)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name.lower().replace("_", "-"))
    return seen

modules = {}
for file in dist.files:
    if file.suffix == ".py":
        tree = ast.parse(file.read_text(), str(file))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "koop_app":
                    modules.setdefault(top, str(file))
owners = md.packages_distributions()
print(json.dumps({
    "app_file": koop_app.__file__,
    "unmet": unmet,
    "closure": {extra: sorted(closure(names)) for extra, names in declared.items()},
    "imports": {top: [owners.get(top, []), where] for top, where in modules.items()},
    "entry_points": {ep.name: ep.value for ep in md.entry_points(group="koop.providers")},
    # Whether the repository's own top-level folders leak in (a third-party distribution may
    # ship a top-level "tests" of its own: pygml does; that one is not ours).
    "importable": {name: importlib.util.find_spec(name) is not None
                   and set(owners.get(name, [])) <= {"koop-django"}
                   for name in ("providers", "koopsite", "tests", "koop_app.providers.records")},
}))
'''

# Modules imported by optional parts of the app, and the extra that declares their package.
OPTIONAL_IMPORTS = {"axes": "login-throttle", "django_redis": "redis", "redis": "redis",
                    "cryptography": "googleanalytics", "botocore": "s3"}


def declared_entry_points() -> dict[str, str]:
    """The koop.providers entry points pyproject.toml declares (the built-in providers)."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return dict(meta["project"]["entry-points"]["koop.providers"])


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300
         ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, (f"{' '.join(args)} failed ({done.returncode}):\n"
                                  f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def _clean_env(tmp: Path) -> dict[str, str]:
    """No PYTHONPATH, no settings of this repository's site, temporary files under ``tmp``."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.update(TMPDIR=str(tmp), PYTHONDONTWRITEBYTECODE="1", PIP_NO_INDEX="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def _readme_snippets() -> dict[str, str]:
    """The section's Python blocks by the file their first line names (``# settings.py``)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(SECTION):]
    section = section[:section.index("\n## ", len(SECTION))]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    snippets = {}
    for block in blocks:
        first, _, rest = block.partition("\n")
        snippets[first.removeprefix("# ").strip()] = rest
    assert set(snippets) == {"settings.py", "urls.py"}, snippets.keys()
    return snippets


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reusable")


@pytest.fixture(scope="module")
def wheel(work: Path) -> Path:
    """The wheel built from a copy of the sources (the checkout gets no build/ or egg-info)."""
    src = work / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "-q", "-w", str(work / "dist"), str(src)], work, _clean_env(work))
    (built,) = (work / "dist").glob("koop_django-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(work: Path, wheel: Path) -> Path:
    """A fresh virtualenv seeing the shared one's packages, with the wheel installed."""
    target = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(target)], work, _clean_env(work))
    python = target / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                    "['purelib'])"], work, _clean_env(work)).stdout.strip()
    shared = sysconfig.get_paths()["purelib"]
    # After the venv's own folder, so the installed wheel wins; addsitedir runs shared .pth too.
    (Path(purelib) / "shared_venv.pth").write_text(f"import site; site.addsitedir({shared!r})\n")
    _run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], work,
         _clean_env(work))
    return python


def test_wheel_ships_templates_static_migrations_and_protos(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    app = ROOT / "koop_app"
    wanted = [path for pattern in ("templates/**/*.html", "static/**/*", "migrations/*.py",
                                   "encoders/*.proto", "**/*.py")
              for path in app.glob(pattern)
              if path.is_file() and not path.name.startswith(".") and "__pycache__" not in
              path.parts and "node_modules" not in path.parts]
    missing = sorted(str(p.relative_to(ROOT)) for p in wanted
                     if str(p.relative_to(ROOT)) not in names)
    assert not missing, f"not in the wheel: {missing}"
    assert any(n.startswith("koop_app/templates/koop_app/geoservices/") for n in names)
    assert "koop_app/migrations/0001_initial.py" in names
    assert "koop_app/encoders/FeatureCollection.proto" in names
    if (app / "static" / "koop_app" / "vendor").is_dir():  # after scripts/ensure-web-assets
        assert "koop_app/static/koop_app/vendor/leaflet/leaflet.js" in names
    # The built-in providers live under the app; nothing else of the repository is shipped.
    providers = sorted(str(p.relative_to(ROOT / "providers")) for p in
                       (ROOT / "providers").rglob("*.py") if "__pycache__" not in p.parts)
    assert all(f"koop_app/providers/{p}" in names for p in providers)
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"koop_app"}, tops


def test_declared_requirements_cover_what_the_app_imports(work: Path, venv: Path) -> None:
    found = orjson.loads(_run([str(venv), "-c", INSPECT], work, _clean_env(work)).stdout)
    assert found["app_file"].startswith(str(work / "venv")), found["app_file"]
    assert found["unmet"] == [], found["unmet"]
    # Every distribution the app's modules import is declared (directly or through a declared
    # requirement); modules of optional parts come from their extra.
    base = set(found["closure"][""])
    undeclared = []
    for module, (owners, where) in found["imports"].items():
        pool = set(found["closure"].get(OPTIONAL_IMPORTS.get(module, ""), [])) | base
        if not {owner.lower().replace("_", "-") for owner in owners} & pool:
            undeclared.append(f"{module} ({where}; from {owners or 'nothing installed'})")
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
    assert found["entry_points"] == declared_entry_points()
    assert {"geojson", "csv", "s3", "github", "arcgis"} <= set(found["entry_points"])
    assert found["importable"] == {"providers": False, "koopsite": False, "tests": False,
                                   "koop_app.providers.records": True}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def project(work: Path, venv: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """``startproject`` + the README's settings and urls + migrate + two registered datasets."""
    env = {**_clean_env(work), "DJANGO_SUPERUSER_USERNAME": "gisadmin",
           "DJANGO_SUPERUSER_PASSWORD": "a-long-test-password", "DJANGO_SUPERUSER_EMAIL": ""}
    home = work / "hostsite"
    home.mkdir()
    _run([str(venv), "-m", "django", "startproject", "hostsite", "."], home, env)
    snippets = _readme_snippets()
    settings = home / "hostsite" / "settings.py"
    settings.write_text(settings.read_text() + HOST_DRF + snippets["settings.py"])
    urls = home / "hostsite" / "urls.py"
    urls.write_text(urls.read_text() + "\n" + snippets["urls.py"])
    (home / "geodata").mkdir()
    (home / "geodata" / "parks.geojson").write_bytes(orjson.dumps(PARKS))
    (home / "geodata" / "stations.csv").write_text(STATIONS_CSV)
    manage = [str(venv), "manage.py"]
    checked = _run([*manage, "check", "--fail-level", "WARNING"], home, env)
    assert "no issues" in checked.stdout, checked.stdout + checked.stderr
    _run([*manage, "migrate", "--noinput"], home, env)
    out = _run([*manage, "koop_dataset", "geojson", "parks", "--option", "source=parks.geojson",
                "--name", "Parks", "--refresh"], home, env).stdout
    assert "Created geojson/parks" in out, out
    _run([*manage, "koop_dataset", "csv", "stations", "--option", "source=stations.csv",
          "--refresh"], home, env)
    _run([*manage, "koop_dataset", "geojson", "private", "--option", "source=parks.geojson"],
         home, env)
    _run([*manage, "shell", "-c", "from koop_app.models import Dataset; d = Dataset.objects."
          "get(dataset_id='private'); d.access = Dataset.SIGNED_IN; d.save()"], home, env)
    _run([*manage, "createsuperuser", "--noinput"], home, env)
    yield home, env


def test_fresh_project_registers_the_builtin_providers(project, venv: Path) -> None:
    home, env = project
    out = _run([str(venv), "manage.py", "shell", "-c", "from koop_app.registry import "
                "registry; print(registry.names())"], home, env).stdout
    assert out.strip().splitlines()[-1] == str(sorted(declared_entry_points()))


@pytest.fixture(scope="module")
def server(project, venv: Path, work: Path) -> Iterator[str]:
    home, env = project
    port = _free_port()
    log = (work / "runserver.log").open("w")
    process = subprocess.Popen([str(venv), "manage.py", "runserver", "--noreload",
                                f"127.0.0.1:{port}"], cwd=home, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(base + "/rest/info?f=json")
                break
            except OSError:
                assert process.poll() is None, (work / "runserver.log").read_text()
                assert time.monotonic() < deadline, (work / "runserver.log").read_text()
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(10)
        log.close()
    served = (work / "runserver.log").read_text()
    assert "Traceback" not in served, served[-4000:]


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str, headers: dict[str, str] | None = None, opener: Any = _OPENER
         ) -> tuple[int, Message, bytes]:
    """Status, headers (names in any case) and body of a GET."""
    request = urllib.request.Request(url, headers=headers or {})
    with opener.open(request, timeout=30) as answer:
        return answer.status, answer.headers, answer.read()


def _json(url: str) -> dict[str, Any]:
    status, _, body = _get(url)
    assert status == 200
    return orjson.loads(body)


def test_fresh_project_serves_the_layer(server: str) -> None:
    layer = f"{server}/geojson/rest/services/parks/FeatureServer/0"
    found = _json(f"{layer}/query?where=1=1&f=json")
    assert "error" not in found, found
    assert len(found["features"]) == 3
    assert all("x" in f["geometry"] and "y" in f["geometry"] for f in found["features"])
    found = _json(f"{layer}/query?where=acres>5&outFields=name,acres&orderByFields=name&f=json")
    assert [f["attributes"]["name"] for f in found["features"]] == ["Old Mill", "Riverside"]
    assert [f["attributes"]["acres"] for f in found["features"]] == [7.25, 12.5]
    service = _json(f"{server}/geojson/rest/services/parks/FeatureServer?f=json")
    assert [entry["name"] for entry in service["layers"]] == ["Parks"]
    info = _json(f"{layer}?f=json")
    assert {"park_id", "name", "acres"} <= {field["name"] for field in info["fields"]}
    stations = _json(f"{server}/csv/rest/services/stations/FeatureServer/0/query?where=1=1"
                     "&outFields=station,depth&orderByFields=station&f=json")
    assert [(f["attributes"]["station"], f["attributes"]["depth"])
            for f in stations["features"]] == [("North", 11), ("South", 7)]
    assert _json(f"{server}/rest/services?f=json")["folders"] == ["csv", "geojson"]
    folder = _json(f"{server}/rest/services/geojson?f=json")  # anonymous: no private dataset
    # One entry per ArcGIS service type, as ArcGIS Server lists a tile service beside its
    # feature service; each names every output's URL for the dataset.
    assert [(entry["name"], entry["type"]) for entry in folder["services"]] == [
        ("geojson/parks", "FeatureServer"), ("geojson/parks", "VectorTileServer")]
    assert folder["services"][0]["url"] == f"{server}/rest/services/geojson/parks/FeatureServer"
    assert {"WFS", "WMS", "OGC API Features", "CSV"} <= set(folder["services"][0]["offers"])


def test_fresh_project_keeps_geoservices_behaviour(server: str) -> None:
    """Errors, access and CORS as in koopsite, whatever the host's DRF settings say."""
    private = _json(f"{server}/geojson/rest/services/private/FeatureServer/0/query?where=1=1"
                    "&f=json")
    assert private["error"]["code"] == 499, private  # token required, as ArcGIS Server says
    missing = _json(f"{server}/geojson/rest/services/nothing/FeatureServer/0?f=json")
    assert missing["error"]["code"] == 404, missing
    status, headers, _ = _get(f"{server}/geojson/rest/services/parks/FeatureServer/0?f=json",
                              {"Origin": "https://www.arcgis.com"})
    assert status == 200 and headers.get("Access-Control-Allow-Origin") == "*"
    status, headers, body = _get(f"{server}/static/koop_app/pages.css")
    assert status == 200 and body


def test_fresh_project_admin_lists_the_datasets(server: str) -> None:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPCookieProcessor(jar))
    _get(f"{server}/admin/login/", opener=opener)
    token = next(cookie.value for cookie in jar if cookie.name == "csrftoken")
    form = urllib.parse.urlencode({"username": "gisadmin", "password": "a-long-test-password",
                                   "csrfmiddlewaretoken": token,
                                   "next": "/admin/koop_app/dataset/"}).encode()
    request = urllib.request.Request(f"{server}/admin/login/", data=form,
                                     headers={"Referer": f"{server}/admin/login/"})
    with opener.open(request, timeout=30) as answer:
        assert answer.status == 200
        page = answer.read().decode()
    assert answer.url.endswith("/admin/koop_app/dataset/"), answer.url
    assert "parks" in page and "stations" in page
