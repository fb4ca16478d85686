"""Write all datasets to a JSON file (or standard output with ``-``)."""

from __future__ import annotations

import sys
from typing import Any

import orjson
from django.core.management.base import BaseCommand, CommandParser

from koop_app.datasets_io import export_datasets
from koop_app.management.help import explain


class Command(BaseCommand):
    help = (
        "Export every registered dataset (provider, route, options, overrides, access) as JSON.\n"
        "\n"
        "The file is what koop_import reads: keep datasets in version control, or copy them\n"
        "to another site. Cached data and refresh state are not exported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        explain(parser, """
            manage.py koop_export datasets.json
            manage.py koop_export | jq '.datasets[].id'
        """)
        parser.add_argument("path", nargs="?", default="-",
                            help="the file to write; - or nothing for standard output")

    def handle(self, *args: Any, **opts: Any) -> None:
        document = export_datasets()
        body = orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
        if opts["path"] == "-":
            sys.stdout.buffer.write(body)
            return
        with open(opts["path"], "wb") as handle:
            handle.write(body)
        self.stderr.write(f"Exported {len(document['datasets'])} datasets to {opts['path']}")
