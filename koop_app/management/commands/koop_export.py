"""Write all datasets to a JSON file (or standard output with ``-``)."""

from __future__ import annotations

import sys
from typing import Any

import orjson
from django.core.management.base import BaseCommand, CommandParser

from koop_app.datasets_io import export_datasets


class Command(BaseCommand):
    help = "Export the registered datasets as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", default="-")

    def handle(self, *args: Any, **opts: Any) -> None:
        document = export_datasets()
        body = orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
        if opts["path"] == "-":
            sys.stdout.buffer.write(body)
            return
        with open(opts["path"], "wb") as handle:
            handle.write(body)
        self.stderr.write(f"Exported {len(document['datasets'])} datasets to {opts['path']}")
