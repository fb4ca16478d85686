"""The production stack's files: docker-compose.yml against the Compose Specification, the rules
the schema cannot state, the Dockerfile, the nginx template and the container healthchecks.

The schema is the Compose Specification's own ``compose-spec.json`` as the pinned
``check-jsonschema`` package ships it (``builtin_schemas/vendor``), validated with the pinned
``jsonschema``; no network.
"""

from __future__ import annotations

import importlib
import importlib.resources
import importlib.util
import os
import re
import stat
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
from jsonschema import validators

from koop_app.conf import DEFAULTS
from tests.compose import (
    APP_SERVICES,
    COMPOSE_FILE,
    ENV_EXAMPLE,
    ROOT,
    dockerfile_env,
    dockerfile_instructions,
    interpolate,
    load_compose,
    raw_compose,
    read_env_file,
    referenced_variables,
    render_nginx_template,
    service_command,
)

NGINX_TEMPLATE = ROOT / "deploy" / "nginx" / "templates" / "default.conf.template"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|(^|_)KEY$", re.I)


def compose_schema() -> dict[str, Any]:
    path = (importlib.resources.files("check_jsonschema")
            / "builtin_schemas" / "vendor" / "compose-spec.json")
    return orjson.loads(path.read_bytes())


def schema_errors(document: Any) -> list[str]:
    schema = compose_schema()
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
            for error in validator_class(schema).iter_errors(document)]


def test_the_schema_is_the_compose_specification():
    schema = compose_schema()
    assert schema["$id"] == "compose_spec.json"
    assert {"services", "volumes", "networks", "secrets"} <= set(schema["properties"])
    license_text = (importlib.resources.files("check_jsonschema") / "builtin_schemas"
                    / "vendor" / "licenses" / "LICENSE.compose-spec").read_text()
    assert "Apache License" in license_text


def test_docker_compose_yml_follows_the_compose_specification():
    assert schema_errors(raw_compose()) == []
    # As compose validates it: after interpolation from the documented .env.
    assert schema_errors(load_compose(read_env_file(ENV_EXAMPLE))) == []


def test_the_schema_check_catches_mistakes():
    broken = raw_compose()
    broken["services"]["web"]["healthcheck"]["timeout"] = [10]
    broken["services"]["worker"]["depends_on"]["web"]["condition"] = "service_ready"
    broken["services"]["beat"]["restart_policy"] = "always"  # belongs under deploy:
    errors = schema_errors(broken)
    assert any(e.startswith("services/web/healthcheck/timeout") for e in errors), errors
    assert any("service_ready" in e for e in errors), errors
    assert any("restart_policy" in e for e in errors), errors


def test_the_design_shape_with_a_front():
    assert set(raw_compose()["services"]) == {"front", "web", "worker", "beat", "redis",
                                              "postgres"}


def test_every_service_has_a_healthcheck_and_a_restart_policy():
    for name, service in raw_compose()["services"].items():
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), name
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert service.get("restart") in ("unless-stopped", "always"), name


def test_web_worker_and_beat_run_one_image_built_once():
    services = raw_compose()["services"]
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1 and ":" in images.pop()
    built = [name for name in APP_SERVICES if "build" in services[name]]
    assert built == ["web"], "one service builds the image, the others run it"
    assert services["web"]["build"] == "." and (ROOT / "Dockerfile").exists()
    for name in ("front", "redis", "postgres"):  # images from a registry, with a version
        image = services[name]["image"]
        assert "build" not in services[name] and re.search(r":\d", image), image
    assert services["postgres"]["image"].startswith("postgis/postgis:")


def test_no_service_installs_packages_at_start():
    for name, service in raw_compose()["services"].items():
        command = " ".join(service_command(service)) if "command" in service else ""
        assert "pip install" not in command and "apt-get" not in command, name
    start = (ROOT / "scripts" / "start-web").read_text()
    assert "pip " not in start and "collectstatic" not in start


def test_services_wait_for_the_health_of_what_they_need():
    services = raw_compose()["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: long form, with conditions"
        for target, rule in depends.items():
            assert rule["condition"] == "service_healthy", (name, target)
            assert set(rule) <= {"condition", "restart"}, (name, target)
            assert "healthcheck" in services[target], target
    assert set(services["web"]["depends_on"]) == {"postgres", "redis"}
    for name in ("worker", "beat"):  # web healthy: its migrations have run
        assert set(services[name]["depends_on"]) == {"web", "postgres", "redis"}
    assert set(services["front"]["depends_on"]) == {"web"}
    assert services["front"]["depends_on"]["web"]["restart"] is True
    # Compose starts them in an order: no cycle.
    done: set[str] = set()
    while len(done) < len(services):
        ready = {n for n, s in services.items()
                 if n not in done and set(s.get("depends_on", {})) <= done}
        assert ready, f"a depends_on cycle among {set(services) - done}"
        done |= ready


def _strings(node: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(node, dict):
        return [pair for key, value in node.items() for pair in _strings(value, f"{path}/{key}")]
    if isinstance(node, list):
        return [pair for i, value in enumerate(node) for pair in _strings(value, f"{path}/{i}")]
    return [(path, str(node))] if node is not None else []


def test_no_secret_is_written_in_the_compose_file():
    document = raw_compose()
    for path, value in _strings(document):
        key = path.rsplit("/", 1)[-1]
        if SECRET_NAME.search(key) and not value.startswith("/"):  # a mounted file's path
            assert re.fullmatch(r"\$\{\w+(:?\?[^}]*)?\}", value), \
                f"{path}: a secret must come from .env (${{NAME}}), not be written here"
        assert not re.search(r"://[^/\s:@]+:[^/\s@$]+@", value), f"{path}: a password in a URL"
    for name, service in document["services"].items():
        assert service.get("env_file", ".env") == ".env", name
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "/.env" in ignored or ".env" in ignored
    docker_ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", "deploy/certs", "*.key", ".venv"} <= set(docker_ignored)


def test_env_example_documents_every_variable_the_stack_reads():
    documented = read_env_file(ENV_EXAMPLE)
    assert referenced_variables() <= set(documented)
    # What the settings need in production is there: secrets, hosts, services, the admin.
    assert {"DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DJANGO_SECURE", "DATABASE_URL",
            "REDIS_URL", "POSTGRES_PASSWORD", "KOOP_ADMIN_USER", "KOOP_ADMIN_PASSWORD",
            "KOOP_TRUSTED_PROXIES"} <= set(documented)
    # ... and nothing there is stale: each name is read by the code, the compose file or a script.
    sources = "".join(path.read_text() for folder in ("koopsite", "koop_app", "deploy")
                      for path in (ROOT / folder).rglob("*.py"))
    sources += COMPOSE_FILE.read_text() + (ROOT / "scripts" / "start-web").read_text()
    assert "dj_database_url.config(" in sources  # it reads DATABASE_URL
    for name in set(documented) - {"DATABASE_URL"}:
        assert f'"{name}"' in sources or f"{{{name}" in sources, f"{name} is read nowhere"
    # No real secret in the example.
    assert documented["KOOP_ADMIN_PASSWORD"] == ""
    assert "change-me" in documented["DJANGO_SECRET_KEY"]


def test_the_nginx_template_uses_only_the_fronts_variables():
    front = raw_compose()["services"]["front"]
    template = NGINX_TEMPLATE.read_text()
    prefix = front["environment"]["NGINX_ENVSUBST_FILTER"]
    used = set(re.findall(r"\$\{?(KOOP_\w+)", template))
    assert used == {name for name in front["environment"] if name.startswith(prefix)}
    assert "./deploy/nginx/templates:/etc/nginx/templates:ro" in front["volumes"]
    rendered = "\n".join(line for line in render_nginx_template(
        template, front["environment"]).splitlines() if not line.lstrip().startswith("#"))
    assert "KOOP_" not in rendered and "${" not in rendered
    assert "proxy_pass http://koop_web;" in rendered and "$request_uri" in rendered


def _bytes(size: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", size).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit.lower()]


def test_the_fronts_body_limit_admits_what_the_app_accepts():
    template = NGINX_TEMPLATE.read_text()
    limit = _bytes(re.search(r"client_max_body_size (\w+);", template).group(1))  # type: ignore[union-attr]
    largest = max(int(DEFAULTS["MAX_REQUEST_BODY_BYTES"]),
                  int(DEFAULTS.get("MAX_UPLOAD_BYTES", 0) or 0))
    # A multipart upload carries the file plus its envelope; the app's own refusal (a clear
    # message) must be what the user sees, not nginx's 413.
    assert limit >= largest + 1024 * 1024
    # Long ArcGIS GET URLs (the app allows 16 KiB) get through.
    buffers = re.search(r"large_client_header_buffers \d+ (\w+);", template).group(1)  # type: ignore[union-attr]
    assert _bytes(buffers) >= 16 * 1024


def test_the_front_redirects_http_forwards_and_buffers():
    template = NGINX_TEMPLATE.read_text()
    assert "return 301 https://$host$request_uri;" in template
    for header in ("X-Forwarded-Proto $scheme", "X-Forwarded-Host $http_host",
                   "X-Forwarded-For $remote_addr", 'Forwarded ""'):
        assert f"proxy_set_header {header};" in template
    assert "proxy_request_buffering on;" in template and "proxy_buffering on;" in template
    assert "ssl_certificate ${KOOP_FRONT_CERT};" in template


def test_the_dockerfile_builds_static_files_in_and_runs_as_a_user():
    instructions = dockerfile_instructions()
    users = [args for name, args in instructions if name == "USER"]
    assert users and users[-1] not in ("root", "0"), "the app runs as a user, not root"
    runs = [args for name, args in instructions if name == "RUN"]
    collect = [run for run in runs if "collectstatic" in run]
    assert collect, "static files are collected at build"
    assert "KOOP_STATIC_ROOT" in dockerfile_env()
    assert not dockerfile_env()["KOOP_STATIC_ROOT"].startswith("/app/var"), \
        "the var volume would hide the image's static files"
    assert [i for i, (n, _) in enumerate(instructions) if n == "USER"][-1] > \
        [i for i, (n, a) in enumerate(instructions) if n == "RUN" and "collectstatic" in a][0]
    assert any("pip install" in run and "requirements.txt" in run for run in runs)
    cmd = [args for name, args in instructions if name == "CMD"]
    assert cmd == ['["scripts/start-web"]']
    start = ROOT / "scripts" / "start-web"
    assert start.stat().st_mode & stat.S_IXUSR
    text = start.read_text()
    steps = [text.index(s) for s in ("manage.py migrate", "manage.py koop_admin_user --from-env",
                                     "exec gunicorn")]
    assert steps == sorted(steps), "migrate, then the admin user, then the server"
    for name, args in dockerfile_instructions(0) + instructions:
        if name == "FROM":
            image = args.split()[0]
            assert ":" in image and not image.endswith(":latest"), image


def _healthcheck_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("koop_healthcheck",
                                                  ROOT / "deploy" / "healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_beats_healthcheck_reads_the_heartbeat_the_scheduler_writes(tmp_path, monkeypatch):
    from koopsite.beat import heartbeat_path

    healthcheck = _healthcheck_module()
    beat = tmp_path / "beat"
    monkeypatch.setenv("KOOP_BEAT_HEARTBEAT", str(beat))
    assert heartbeat_path() == healthcheck.beat_heartbeat_path() == beat
    assert healthcheck.main(["beat"]) == 1  # no tick yet
    beat.touch()
    assert healthcheck.main(["beat"]) == 0
    old = time.time() - healthcheck.BEAT_STALE_SECONDS - 5
    os.utime(beat, (old, old))
    assert healthcheck.main(["beat"]) == 1
    monkeypatch.delenv("KOOP_BEAT_HEARTBEAT")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the container's own temp folder by default
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    assert heartbeat_path() == healthcheck.beat_heartbeat_path() == tmp_path / \
        "koop-beat-heartbeat"


def test_webs_healthcheck_needs_an_answer(monkeypatch, capsys):
    from koop_app.testing import free_port

    healthcheck = _healthcheck_module()
    monkeypatch.setenv("KOOP_WEB_BIND", f"0.0.0.0:{free_port()}")  # nothing listens there
    assert healthcheck.main(["web"]) == 1
    assert "no answer on 127.0.0.1" in capsys.readouterr().out
    assert healthcheck.main(["nothing"]) == 2


@pytest.mark.parametrize("text, expected", [
    ("${A}", "1"), ("$A/x", "1/x"), ("${B:-d}", "d"), ("${B-d}", "d"), ("${E:-d}", "d"),
    ("${E-d}", ""), ("$${A}", "${A}"), ("a$$b", "a$b")])
def test_interpolation_follows_compose(text, expected):
    assert interpolate(text, {"A": "1", "E": ""}) == expected


def test_a_required_variable_must_be_set():
    from tests.compose import InterpolationError

    with pytest.raises(InterpolationError, match="POSTGRES_PASSWORD: set POSTGRES_PASSWORD"):
        load_compose({k: v for k, v in read_env_file(ENV_EXAMPLE).items()
                      if k != "POSTGRES_PASSWORD"})


def test_the_start_up_steps_exist(tmp_path):
    # The commands compose runs are this repository's: the script and modules they name.
    services = raw_compose()["services"]
    assert service_command(services["web"]) == ["scripts/start-web"]
    beat = service_command(services["beat"])
    scheduler = beat[beat.index("--scheduler") + 1]
    module, _, name = scheduler.partition(":")
    assert getattr(importlib.import_module(module), name)
    assert Path(ROOT / "deploy" / "gunicorn.conf.py").exists()

