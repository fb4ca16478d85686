"""Create or update datasets from a JSON file written by ``koop_export`` (all or nothing)."""

from __future__ import annotations

import sys
from typing import Any

import orjson
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from koop_app.datasets_io import describe, import_datasets
from koop_app.management.help import explain


class Command(BaseCommand):
    help = (
        "Create or update datasets from a JSON file written by koop_export.\n"
        "\n"
        "All or nothing: every entry is checked (provider, options, fields) first, and one bad\n"
        "entry imports none. A dataset with the same provider, host and id is updated."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        explain(parser, """
            manage.py koop_import datasets.json
            ssh old-site manage.py koop_export | manage.py koop_import -
        """)
        parser.add_argument("path", help="the JSON file, or - for standard input")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            if opts["path"] == "-":
                raw = sys.stdin.buffer.read()
            else:
                with open(opts["path"], "rb") as handle:
                    raw = handle.read()
        except OSError as exc:
            raise CommandError(f"Cannot read {opts['path']}: {exc.strerror}") from None
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise CommandError(f"{opts['path']} is not valid JSON: {exc}") from None
        try:
            saved = import_datasets(document)
        except ValidationError as exc:
            raise CommandError(describe(exc)) from None
        created = sum(1 for _, new in saved if new)
        self.stdout.write(f"Imported {len(saved)} datasets ({created} new, "
                          f"{len(saved) - created} updated).")
