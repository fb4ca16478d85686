"""Writes a new provider package from templates: what ``manage.py koop_new_provider`` runs.

    plan = plan_provider("trail-sensors", Path("providers"), root=Path("."))
    written = write_provider(plan)     # the files, relative to plan.folder

The package holds the provider (a JSON records API read with the safe client, with an options
schema), its README and tests that pass as generated. ``package=True`` writes a distribution
folder instead (``koop-provider-<name>/`` with a pyproject.toml declaring the
``koop.providers`` entry point, the package inside it), for a provider installed with pip.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass
from pathlib import Path
from string import Template

from koop_app.provider import NAME_PATTERN

TEMPLATES = Path(__file__).parent / "templates"
PACKAGE_FILES = ("__init__.py", "provider.py", "README.md", "tests/__init__.py",
                 "tests/test_provider.py")
POLICY_TEXT = {
    "cached": "The records are fetched once and kept for the dataset's cache lifetime; queries "
              "are answered from the stored copy.",
    "pass-through": "The API is asked on every request and our engine filters its answer; "
                    "push filters to the API and report them in `filtersApplied` for speed.",
}


class ScaffoldError(ValueError):
    """A name or folder the scaffold cannot use; the message says why."""


@dataclass(frozen=True)
class ProviderPlan:
    name: str              # the URL namespace: /<name>/rest/services/...
    module: str            # the dotted import path of the package
    class_name: str
    folder: Path           # where the package's files go
    distribution: Path | None  # the distribution folder (package=True), else None
    cache_policy: str
    test_path: str         # the tests' folder as a developer names it from where they work

    @property
    def title(self) -> str:
        return " ".join(part.capitalize() for part in self.name.replace("_", "-").split("-"))

    @property
    def dotted_path(self) -> str:
        return f"{self.module}.{self.class_name}"


def plan_provider(name: str, directory: Path, *, root: Path, package: bool = False,
                  pass_through: bool = False, taken: tuple[str, ...] = ()) -> ProviderPlan:
    """Check ``name`` and work out where its files go; ScaffoldError says what is wrong.

    ``directory`` is where the package (or, with ``package``, the distribution folder) is
    made; ``root`` is the folder on the import path (the project's), from which the dotted
    module path is derived; ``taken`` are the names of providers already registered.
    """
    if not NAME_PATTERN.match(name):
        raise ScaffoldError(f"{name!r} is not a provider name: lowercase letters, digits, '-' "
                            "and '_', starting with a letter (it becomes the URL namespace)")
    if name in taken:
        raise ScaffoldError(f"a provider named {name!r} is already registered")
    package_name = name.replace("-", "_")
    if keyword.iskeyword(package_name):
        raise ScaffoldError(f"{name!r} is a Python keyword; pick another name")
    class_name = "".join(part.capitalize() for part in package_name.split("_")) + "Provider"
    directory = directory.resolve()
    if package:
        distribution = directory / f"koop-provider-{name}"
        if distribution.exists():
            raise ScaffoldError(f"{distribution} already exists; nothing was written")
        return ProviderPlan(name, package_name, class_name, distribution / package_name,
                            distribution, "pass-through" if pass_through else "cached",
                            f"{package_name}/tests")
    folder = directory / package_name
    if folder.exists():
        raise ScaffoldError(f"{folder} already exists; nothing was written")
    root = root.resolve()
    module = _module_path(folder, root)
    inside = folder.is_relative_to(root)
    test_path = (folder.relative_to(root) if inside else Path(folder.name)) / "tests"
    return ProviderPlan(name, module, class_name, folder, None,
                        "pass-through" if pass_through else "cached", test_path.as_posix())


def _module_path(folder: Path, root: Path) -> str:
    """``folder``'s dotted import path from ``root``; every parent in between must be a package."""
    try:
        relative = folder.relative_to(root)
    except ValueError:
        return folder.name  # outside the project: importable once its parent is on sys.path
    parents = [root.joinpath(*relative.parts[:n]) for n in range(1, len(relative.parts))]
    for parent in parents:
        if not (parent / "__init__.py").exists():
            raise ScaffoldError(f"{parent} is not a Python package (no __init__.py): the "
                                f"provider could not be imported as "
                                f"{'.'.join(relative.parts)}")
    return ".".join(relative.parts)


def write_provider(plan: ProviderPlan) -> list[Path]:
    """Write the files of ``plan``; returns their paths. Nothing is ever overwritten."""
    values = {
        "name": plan.name, "module": plan.module, "class_name": plan.class_name,
        "title": plan.title, "cache_policy": plan.cache_policy,
        "policy_text": POLICY_TEXT[plan.cache_policy], "test_path": plan.test_path,
        "distribution": f"koop-provider-{plan.name}",
        "description": "records of a JSON API with latitude and longitude, as points.",
    }
    files = [(plan.folder / relative, TEMPLATES / f"{relative}.tpl")
             for relative in PACKAGE_FILES]
    if plan.distribution is not None:
        files.append((plan.distribution / "pyproject.toml", TEMPLATES / "pyproject.toml.tpl"))
    written = []
    for target, template in files:
        target.parent.mkdir(parents=True, exist_ok=True)
        text = Template(template.read_text(encoding="utf-8")).substitute(values)
        with target.open("x", encoding="utf-8") as out:  # "x": never overwrite
            out.write(text)
        written.append(target)
    return written
