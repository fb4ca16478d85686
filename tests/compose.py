"""docker-compose.yml, .env files and the Dockerfile read as Docker reads them, for the tests.

The production-stack test runs the compose file's own commands, environments and healthchecks
without Docker; the deploy-files test checks the file's shape. Both read it through here, so
neither can drift from what ``docker compose up`` would do with the same file.

    variables = read_env_file(ROOT / ".env.example")
    compose = load_compose(variables)            # ${...} filled in, $$ -> $
    service_environment(compose["services"]["web"], variables)
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
APP_SERVICES = ("web", "worker", "beat")

# $$, ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, $NAME
_VARIABLE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>\w+)(?:(?P<op>:?[-?])"
                       r"(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_]\w*))")


class InterpolationError(ValueError):
    """A ``${NAME:?message}`` whose variable is unset, as ``docker compose`` refuses it."""


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as compose reads an env file: comments, blanks and quotes handled."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep:
            raise ValueError(f"{path}: not KEY=VALUE: {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        found[key.strip()] = value
    return found


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """One string with compose's variable syntax filled in from ``variables``."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        value, op, arg = variables.get(name), match["op"], match["arg"]
        unset = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in (":-", "-") and unset:
            return arg
        if op in (":?", "?") and unset:
            raise InterpolationError(f"{name}: {arg or 'required'}")
        return value or ""

    return _VARIABLE.sub(replace, text)


def interpolate_tree(node: Any, variables: Mapping[str, str]) -> Any:
    """Every string value of a parsed compose document interpolated (keys are not)."""
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, dict):
        return {key: interpolate_tree(value, variables) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(value, variables) for value in node]
    return node


def raw_compose() -> dict[str, Any]:
    """The file as YAML (merge keys resolved), before interpolation."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def load_compose(variables: Mapping[str, str]) -> dict[str, Any]:
    """The file as compose runs it: interpolated from ``variables`` (the project's .env)."""
    return interpolate_tree(raw_compose(), variables)


def referenced_variables() -> set[str]:
    """The names the file interpolates (``$$NAME`` is the container's own, not counted)."""
    names: set[str] = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)
        elif isinstance(node, str):
            names.update(m["braced"] or m["bare"] for m in _VARIABLE.finditer(node)
                         if not m["escaped"])

    collect(raw_compose())
    return names


def service_environment(service: Mapping[str, Any], env_file: Mapping[str, str]
                        ) -> dict[str, str]:
    """A container's variables as compose sets them: the env_file, then ``environment``."""
    found = dict(env_file) if service.get("env_file") else {}
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    found.update({key: "" if value is None else str(value)
                  for key, value in environment.items()})
    return found


def healthcheck_argv(service: Mapping[str, Any]) -> list[str]:
    """The healthcheck's ``test`` as a command line (CMD-SHELL and strings run in sh -c)."""
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return ["sh", "-c", test]
    kind, *rest = test
    if kind == "CMD":
        return list(rest)
    if kind == "CMD-SHELL":
        return ["sh", "-c", " ".join(rest)]
    raise ValueError(f"healthcheck test {test!r}: not CMD or CMD-SHELL")


def service_command(service: Mapping[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def dockerfile_instructions(stage: int = -1) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of one build stage (the last by default), lines joined."""
    stages: list[list[tuple[str, str]]] = []
    logical = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        logical += stripped.removesuffix("\\").rstrip() + " " if stripped.endswith("\\") \
            else stripped
        if stripped.endswith("\\"):
            continue
        instruction, _, arguments = logical.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), arguments.strip()))
        logical = ""
    return stages[stage]


def dockerfile_env() -> dict[str, str]:
    """The final image's ENV variables (``ENV A=1 B=2`` form)."""
    found: dict[str, str] = {}
    for instruction, arguments in dockerfile_instructions():
        if instruction == "ENV":
            found.update(dict(item.partition("=")[::2] for item in shlex.split(arguments)))
    return found


def render_nginx_template(template: str, environment: Mapping[str, str]) -> str:
    """What the nginx image's entrypoint makes of a template: each ``$NAME`` / ``${NAME}``
    whose name starts with NGINX_ENVSUBST_FILTER and is set is replaced; the rest stays."""
    prefix = re.escape(environment.get("NGINX_ENVSUBST_FILTER", ""))
    pattern = re.compile(r"\$(\{)?(" + prefix + r"\w*)(?(1)\})")
    return pattern.sub(lambda m: environment.get(m[2], m[0]), template)
