"""docker-compose.yml's stack, run without Docker: the same commands, environments, healthchecks
and nginx configuration, on 127.0.0.1.

There is no Docker daemon here, so the test plays compose's part. It reads docker-compose.yml
(through tests/compose.py: merge keys, ${...} from an env file made from .env.example with
fresh secrets), starts the services in depends_on order and waits for each one's own
healthcheck before starting those that need it, like ``condition: service_healthy``:

- postgres: Debian's PostgreSQL (initdb/pg_ctl; as the ``postgres`` user when run as root),
  with the user, database and PostGIS extension the postgis/postgis image creates;
- redis: redis-server;
- web, worker, beat: the compose ``command`` of each, run as written in the repository folder
  (the image's /app) with the image's ENV (Dockerfile), the env file and the service's
  ``environment``; first the Dockerfile's collectstatic line, as the build runs it;
- front: Debian's nginx with deploy/nginx/templates/default.conf.template rendered as the
  nginx image renders it, and a self-signed certificate in place of deploy/certs.

What Docker would give each container is mapped, and only that: each service's ports (its
``expose`` / ``ports``) become free loopback ports, so ``postgres:5432`` in DATABASE_URL or
``0.0.0.0:8000`` become ``127.0.0.1:<port>``; volumes become temp folders (named volumes shared
between services, as in Docker); HOSTNAME and TMPDIR are the container's own. Everything is
stopped at the end, also when a check fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
import requests

from koop_app.testing import RedisServer, free_port
from tests.clients.browser import (
    ArcGISPage,
    PageServer,
    build_page,
    iter_chromium,
    save_screenshot,
)
from tests.compose import (
    APP_SERVICES,
    ENV_EXAMPLE,
    ROOT,
    dockerfile_env,
    dockerfile_instructions,
    healthcheck_argv,
    load_compose,
    read_env_file,
    render_nginx_template,
    service_command,
    service_environment,
    write_env_file,
)
from tests.conftest import collection, feature, point
from tests.postgres import Postgres
from tests.test_https_proxy import Nginx

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent  # the image's python, gunicorn and celery are on PATH
LOOPBACK = "127.0.0.1"
# Ports the images listen on without saying so in the compose file.
IMAGE_PORTS = {"postgres": [5432], "redis": [6379]}
POINTS = 120
HEALTHY_WITHIN_S = 180.0


def free_ports_of(name: str, service: Mapping[str, Any]) -> list[int]:
    ports = {int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in service.get("ports", [])}
    ports |= {int(str(p).split("/")[0]) for p in service.get("expose", [])}
    return sorted(ports | set(IMAGE_PORTS.get(name, [])))


@dataclass
class Loopback:
    """What Docker gives each container, mapped onto this host: ports, volumes, names."""

    compose: dict[str, Any]
    folder: Path
    bind_sources: dict[str, Path] = field(default_factory=dict)  # e.g. ./deploy/certs
    ports: dict[tuple[str, int], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, service in self.compose["services"].items():
            for port in free_ports_of(name, service):
                self.ports[(name, port)] = free_port()

    def port(self, service: str, container_port: int) -> int:
        return self.ports[(service, container_port)]

    def volumes(self, service: str) -> dict[str, Path]:
        """container path -> host folder: named volumes shared, bind mounts from the repo."""
        found = {}
        for entry in self.compose["services"][service].get("volumes", []):
            source, target = str(entry).split(":")[:2]
            if source.startswith((".", "/")):
                host = self.bind_sources.get(source, (ROOT / source).resolve())
            else:
                host = self.folder / "volumes" / source
            host.mkdir(parents=True, exist_ok=True)
            found[target] = host
        return found

    def value(self, service: str, value: str, paths: Mapping[str, Path]) -> str:
        names = "|".join(map(re.escape, self.compose["services"]))
        value = re.sub(rf"\b({names}):(\d+)\b",
                       lambda m: f"{LOOPBACK}:{self.port(m[1], int(m[2]))}", value)
        value = re.sub(r"(?<![\d.])0\.0\.0\.0:(\d+)\b",
                       lambda m: f"{LOOPBACK}:{self.port(service, int(m[1]))}", value)
        value = re.sub(r"(?<![\d.])0\.0\.0\.0(?![\d.])", LOOPBACK, value)
        if value.isdigit() and (service, int(value)) in self.ports:
            return str(self.port(service, int(value)))
        for target in sorted(paths, key=len, reverse=True):
            if value == target or value.startswith(target + "/"):
                return str(paths[target]) + value[len(target):]
        return value

    def environment(self, service: str, variables: Mapping[str, str],
                    image: Mapping[str, str] | None = None) -> dict[str, str]:
        """The container's environment: image ENV, env_file, ``environment``; mapped."""
        tmp = self.folder / service / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        paths = {**self.volumes(service), "/app/static": self.folder / "image" / "static"}
        declared = {**(image or {}),
                    **service_environment(self.compose["services"][service], variables)}
        return {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "LANG": "C.UTF-8",
                "HOME": str(self.folder / service), "HOSTNAME": socket.gethostname(),
                "TMPDIR": str(tmp),
                **{key: self.value(service, value, paths) for key, value in declared.items()}}


class Container:
    """One service's process, in its own process group (stopped with all its children)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.env, self.log = name, env, log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        with contextlib.suppress(ProcessLookupError):  # children left behind, if any
            os.killpg(self.process.pid, signal.SIGKILL)


@dataclass
class Stack:
    compose: dict[str, Any]
    loopback: Loopback
    variables: dict[str, str]
    folder: Path
    cert: Path
    postgres: Postgres
    environments: dict[str, dict[str, str]] = field(default_factory=dict)
    containers: dict[str, Container] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"https://{LOOPBACK}:{self.loopback.port('front', 443)}"

    def healthcheck(self, name: str) -> subprocess.CompletedProcess[str]:
        argv = healthcheck_argv(self.compose["services"][name])
        if name == "redis":  # redis-cli's default port is the container's, not ours
            argv = [part.replace("redis-cli", f"redis-cli -p {self.loopback.port(name, 6379)}")
                    for part in argv]
        return subprocess.run(argv, cwd=ROOT, env=self.environments[name], text=True,
                              capture_output=True, timeout=60)

    def wait_healthy(self, name: str) -> None:
        deadline = time.monotonic() + HEALTHY_WITHIN_S
        while True:
            container = self.containers.get(name)
            if container is not None and container.process.poll() is not None:
                raise AssertionError(f"{name} exited: {container.log.read_text()[-3000:]}")
            result = self.healthcheck(name)
            if result.returncode == 0:
                return
            if time.monotonic() > deadline:
                log = container.log.read_text()[-3000:] if container else ""
                raise AssertionError(f"{name} never became healthy: {result.stdout}"
                                     f"{result.stderr}\n{log}")
            time.sleep(1)

    def manage(self, *args: str) -> str:
        """``docker compose exec web python manage.py ...``"""
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, text=True,
                                env=self.environments["web"], capture_output=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # no REQUESTS_CA_BUNDLE or proxy from the environment
        session.verify = str(self.cert)  # the front's self-signed certificate, and only it
        return session


def start_order(services: Mapping[str, Any]) -> list[str]:
    order: list[str] = []
    while len(order) < len(services):
        order += sorted(n for n, s in services.items()
                        if n not in order and set(s.get("depends_on", {})) <= set(order))
    return order


def self_signed(folder: Path) -> Path:
    """The front's certificate and key, made by scripts/make-cert as the README says."""
    subprocess.run([str(ROOT / "scripts" / "make-cert"), LOOPBACK, "1"], check=True,
                   capture_output=True, env={**os.environ, "KOOP_CERTS_DIR": str(folder)})
    assert (folder / "privkey.pem").stat().st_mode & 0o077 == 0  # the key is not for others
    return folder / "fullchain.pem"


def build_static_files(loopback: Loopback) -> dict[str, str]:
    """The image's ENV, after the Dockerfile's own collectstatic line ran as the build does."""
    image = dockerfile_env()
    tmp = loopback.folder / "build" / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    static = loopback.folder / "image" / "static"
    env = {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "LANG": "C.UTF-8",
           "HOME": str(loopback.folder), "TMPDIR": str(tmp),
           **{k: str(static) if v == "/app/static" else v for k, v in image.items()}}
    line = next(args for name, args in dockerfile_instructions() if name == "RUN"
                and "collectstatic" in args)
    subprocess.run(["sh", "-c", line], cwd=ROOT, env=env, check=True, timeout=300)
    assert (static / "admin" / "css" / "base.css").exists()
    return image


def run_front(stack: Stack) -> Nginx:
    service = stack.compose["services"]["front"]
    templates = stack.loopback.volumes("front")["/etc/nginx/templates"]
    config = "\n".join(render_nginx_template(path.read_text(), stack.environments["front"])
                       for path in sorted(templates.glob("*.template")))
    folder = stack.folder / "front"
    (folder / "nginx.conf.rendered").write_text(config)
    assert service["image"].startswith("nginx:")
    return Nginx(folder, config).__enter__()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    folder = Path(tempfile.mkdtemp(prefix="koop-stack-"))
    variables = read_env_file(ENV_EXAMPLE)
    password = secrets.token_urlsafe(16)
    variables.update({
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "POSTGRES_PASSWORD": password,
        "DATABASE_URL": variables["DATABASE_URL"].replace("change-me-too", password),
        "KOOP_ADMIN_USER": "gisadmin",
        "KOOP_ADMIN_PASSWORD": secrets.token_urlsafe(16),
        "KOOP_LOG_LEVEL": "WARNING",
    })
    write_env_file(folder / ".env", variables)
    compose = load_compose(read_env_file(folder / ".env"))
    services = compose["services"]
    loopback = Loopback(compose, folder, bind_sources={"./deploy/certs": folder / "certs"})
    cert = self_signed(folder / "certs")
    postgres_env = service_environment(services["postgres"], variables)
    postgres = Postgres(loopback.port("postgres", 5432), postgres_env["POSTGRES_USER"],
                        postgres_env["POSTGRES_PASSWORD"], postgres_env["POSTGRES_DB"])
    stack = Stack(compose, loopback, variables, folder, cert, postgres)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
        image = build_static_files(loopback)
        for name in start_order(services):
            image_env = image if name in APP_SERVICES else None
            env = loopback.environment(name, variables, image_env)
            if name == "postgres":
                env.update(PGHOST=LOOPBACK, PGPORT=str(postgres.port))
                cleanup.callback(postgres.stop)
                postgres.start()
            elif name == "redis":
                redis = RedisServer()
                redis.port = loopback.port("redis", 6379)
                cleanup.callback(redis.stop)
                redis.start_on_same_port()
            elif name == "front":
                stack.environments[name] = env
                nginx = run_front(stack)
                cleanup.callback(nginx.__exit__, None, None, None)
            else:
                container = Container(name, service_command(services[name]), env,
                                      folder / f"{name}.log")
                cleanup.callback(container.stop)
                stack.containers[name] = container
            stack.environments[name] = env
            stack.wait_healthy(name)
        yield stack


def parks_document() -> dict[str, Any]:
    return collection([feature({"name": f"park {i}", "rank": i, "area_ha": 2.5 * i},
                               point(-150 + (i * 37) % 300 + 0.5, -60 + (i * 53) % 120 + 0.25))
                       for i in range(POINTS)])


@pytest.fixture(scope="module")
def parks(stack: Stack) -> str:
    """A dataset registered as an operator would: a file in the data volume, then
    ``docker compose exec web python manage.py koop_dataset ...`` (no refresh: beat and the
    worker do that)."""
    data_dir = Path(stack.environments["web"]["KOOP_DATA_DIR"])
    (data_dir / "parks.geojson").write_bytes(orjson.dumps(parks_document()))
    output = stack.manage("koop_dataset", "geojson", "parks", "--option",
                          "source=parks.geojson", "--name", "Parks", "--ttl", "30")
    assert "Created geojson/parks" in output
    return f"{stack.base}/geojson/rest/services/parks/FeatureServer/0"


def test_every_service_passes_its_compose_healthcheck(stack, parks):
    for name in stack.compose["services"]:
        result = stack.healthcheck(name)
        assert result.returncode == 0, (name, result.stdout, result.stderr)


def test_the_admin_and_its_css_are_served_over_https(stack):
    session = stack.session()
    login = session.get(f"{stack.base}/admin/login/", timeout=30)
    assert login.status_code == 200 and "csrfmiddlewaretoken" in login.text
    assert login.headers["Strict-Transport-Security"].startswith("max-age=")  # DJANGO_SECURE
    stylesheets = re.findall(r'href="(/static/[^"]+\.css)"', login.text)
    assert "/static/admin/css/base.css" in stylesheets
    for path in stylesheets:
        css = session.get(stack.base + path, timeout=30)
        assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    base_css = session.get(f"{stack.base}/static/admin/css/base.css", timeout=30)
    built = Path(stack.environments["web"]["KOOP_STATIC_ROOT"]) / "admin" / "css" / "base.css"
    assert base_css.content == built.read_bytes()  # the image's collected file, by WhiteNoise
    # Plain http is only a redirect to https.
    plain = session.get(f"http://{LOOPBACK}:{stack.loopback.port('front', 80)}/admin/",
                         allow_redirects=False, timeout=10)
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"https://{LOOPBACK}/admin/"


def test_the_admin_user_from_the_environment_signs_in(stack):
    session = stack.session()
    login_url = f"{stack.base}/admin/login/?next=/admin/"
    session.get(login_url, timeout=30)
    answer = session.post(login_url, timeout=30, allow_redirects=False, headers={
        "Referer": login_url}, data={
        "username": stack.variables["KOOP_ADMIN_USER"],
        "password": stack.variables["KOOP_ADMIN_PASSWORD"],
        "csrfmiddlewaretoken": session.cookies["csrftoken"], "next": "/admin/"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/"
    assert all(cookie.secure for cookie in session.cookies)  # sent over https only
    index = session.get(f"{stack.base}/admin/", timeout=30)
    assert index.status_code == 200 and "Site administration" in index.text
    assert stack.variables["KOOP_ADMIN_USER"] in index.text
    # The password came from the environment and went nowhere else.
    web_log = stack.containers["web"].log.read_text()
    assert stack.variables["KOOP_ADMIN_PASSWORD"] not in web_log
    assert not (Path(stack.environments["web"]["KOOP_VAR_DIR"]) / "admin_password").exists()


def test_health_answers_through_the_front(stack):
    session = stack.session()
    health = session.get(f"{stack.base}/health", timeout=30)
    assert health.status_code == 200, health.text
    body = health.json()
    assert body["status"] == "ok", body
    assert body["database"]["ok"] and body["cache"]["ok"] and body["broker"]["ok"]
    assert body["workers"]["ok"]  # the compose worker answered the ping
    front = session.get(f"{stack.base}/front-health", timeout=10)
    assert front.status_code == 200 and front.text == "ok\n"


def test_the_app_sees_the_fronts_https_urls_not_a_clients_forged_ones(stack):
    session = stack.session()
    info = session.get(f"{stack.base}/rest/info?f=json", timeout=30, headers={
        "Forwarded": "proto=http;host=evil.example", "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "http", "X-Forwarded-Port": "80"}).json()
    assert info["authInfo"]["tokenServicesUrl"] == f"{stack.base}/rest/generateToken"


def test_a_dataset_registered_with_manage_py_is_refreshed_by_the_worker(stack, parks):
    deadline = time.monotonic() + 150  # beat's first run comes one interval (30 s) after
    row = None
    with psycopg.connect(stack.postgres.url(stack.postgres.database)) as conn:
        while row is None and time.monotonic() < deadline:
            row = conn.execute(
                "SELECT r.trigger, r.ok, r.worker, r.features, r.error, d.feature_count "
                "FROM koop_app_refreshlog r JOIN koop_app_dataset d ON d.id = r.dataset_id "
                "WHERE d.dataset_id = 'parks' AND r.state <> 'running' ORDER BY r.id LIMIT 1"
            ).fetchone()
            conn.commit()
            if row is None:
                time.sleep(2)
        extension = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'postgis'"
                                 ).fetchone()
    assert row is not None, stack.containers["worker"].log.read_text()[-3000:]
    trigger, ok, worker, features, error, feature_count = row
    assert ok, error
    assert trigger == "schedule"  # queued by beat
    assert worker == f"worker@{socket.gethostname()}"  # run by the compose worker
    assert features == feature_count == POINTS
    assert extension is not None  # PostGIS, as the postgis/postgis image has it


class _SelfSignedOK:
    """The browser with every new context accepting the stack's self-signed certificate."""

    def __init__(self, browser: Any) -> None:
        self._browser = browser

    async def new_context(self, **options: Any) -> Any:
        return await self._browser.new_context(ignore_https_errors=True, **options)


def test_the_arcgis_maps_sdk_draws_and_queries_the_layer_over_https(stack, parks):
    chromium_runs = iter_chromium()
    chromium = next(chromium_runs)
    try:
        with PageServer(build_page()) as page_server:
            page = ArcGISPage(chromium.loop)
            page.open(_SelfSignedOK(chromium.browser), page_server.url)
            try:
                drawn = page.draw_layer(parks, 3857, screenshot=True, layerQuery={
                    "where": "rank < 5", "outFields": ["name", "rank"],
                    "orderByFields": ["rank"], "returnGeometry": True})
            finally:
                page.close()
            assert page.record.blocked == [] and page.record.page_errors == []
    finally:
        with contextlib.suppress(StopIteration):
            next(chromium_runs)
    assert "error" not in drawn, drawn
    print("map drawn over https:", save_screenshot(drawn.pop("screenshot"),
                                                   "production-stack-arcgis"))
    assert drawn["view"]["featureCount"] == POINTS
    assert drawn["view"]["inkPixels"] > 500
    assert [f["attributes"]["rank"] for f in drawn["layerQuery"]["features"]] == [0, 1, 2, 3, 4]
    assert drawn["layer"]["geometryType"] == "point"
    layer_requests = page.requests_to(parks)
    assert layer_requests and all(r.url.startswith("https://") for r in layer_requests)
