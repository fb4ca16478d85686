"""Write a new provider package (provider, options, README, tests), like koop-cli's
``koop new provider``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from koop_app.management.help import explain
from koop_app.registry import registry
from koop_app.scaffold import ScaffoldError, plan_provider, write_provider


def project_root() -> Path:
    """The folder manage.py runs from (settings.BASE_DIR when the project sets it)."""
    return Path(getattr(settings, "BASE_DIR", None) or Path.cwd())


def default_directory(root: Path) -> Path:
    """``providers/`` of the project when it is a package there, else the project's folder."""
    providers = root / "providers"
    return providers if (providers / "__init__.py").exists() else root


class Command(BaseCommand):
    help = ("Write a new provider package: a provider reading a JSON records API (edit it for "
            "your source), its options, a README and tests that pass as written.")

    def add_arguments(self, parser: CommandParser) -> None:
        explain(parser, """
            manage.py koop_new_provider trail-sensors
            manage.py koop_new_provider trail-sensors --pass-through
            manage.py koop_new_provider trail-sensors --package --directory ~/src
        """)
        parser.add_argument("name", help="the provider's name and URL namespace "
                                         "(/<name>/rest/services/...), e.g. trail-sensors")
        parser.add_argument("--directory", type=Path, default=None,
                            help="where to write it (default: the project's providers/ "
                                 "package if there is one, else the project's folder)")
        parser.add_argument("--pass-through", action="store_true",
                            help="ask the source on every request instead of caching its data")
        parser.add_argument("--package", action="store_true",
                            help="write a pip-installable distribution (koop-provider-<name>/ "
                                 "with a pyproject.toml declaring the koop.providers entry "
                                 "point) instead of a package inside the project")

    def handle(self, *args: Any, **options: Any) -> None:
        root = project_root()
        directory = options["directory"] or default_directory(root)
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a folder")
        try:
            plan = plan_provider(options["name"], directory, root=root,
                                 package=options["package"],
                                 pass_through=options["pass_through"],
                                 taken=tuple(registry.names()))
            written = write_provider(plan)
        except (ScaffoldError, OSError) as exc:
            raise CommandError(str(exc)) from None
        top = plan.distribution or plan.folder
        self.stdout.write(f"Wrote the {plan.name} provider in {top}:")
        for path in written:
            self.stdout.write(f"  {path.relative_to(top.parent)}")
        self.stdout.write("Next:")
        if plan.distribution is not None:
            self.stdout.write(f"  pip install -e {plan.distribution}   (the entry point "
                              f"registers it)")
        else:
            self.stdout.write(f'  add "{plan.dotted_path}" to KOOP["PROVIDERS"] in settings')
        self.stdout.write(f"  python -m pytest {plan.folder / 'tests'}")
        self.stdout.write(f"  manage.py koop_dataset {plan.name} <id> --option url=<API URL>")
