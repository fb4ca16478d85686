"""Add or update one dataset from the command line.

    manage.py koop_dataset geojson parks --option source=parks.geojson --name Parks --ttl 600
    manage.py koop_dataset csv stations --options '{"source": "s.csv", "delimiter": ";"}'
"""

from __future__ import annotations

from typing import Any

import orjson
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from koop_app import data
from koop_app.datasets_io import describe, save_dataset
from koop_app.errors import KoopError
from koop_app.probe import CheckFailed, Probe, failure_message, location_of, probe


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise CommandError(f"--option expects key=value, got {text!r}")
    return key.strip(), value


class Command(BaseCommand):
    help = "Create or update a dataset (provider, host, id, options, overrides)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider")
        parser.add_argument("id", nargs="?", default="", help="the :id route segment")
        parser.add_argument("--host", default="")
        parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                            help="a provider option; repeat for more")
        parser.add_argument("--options", default=None, metavar="JSON",
                            help="provider options as a JSON object")
        parser.add_argument("--replace-options", action="store_true",
                            help="replace the stored options instead of adding to them")
        parser.add_argument("--name")
        parser.add_argument("--description")
        parser.add_argument("--ttl", type=int)
        parser.add_argument("--id-field")
        parser.add_argument("--display-field")
        parser.add_argument("--geometry-type")
        parser.add_argument("--max-record-count", type=int)
        parser.add_argument("--start-time-field", help="a date field: the layer gets timeInfo")
        parser.add_argument("--end-time-field")
        parser.add_argument("--fields", metavar="JSON", help='{"name": {"alias": .., "type": ..}}')
        state = parser.add_mutually_exclusive_group()
        state.add_argument("--enable", dest="enabled", action="store_true", default=None)
        state.add_argument("--disable", dest="enabled", action="store_false")
        parser.add_argument("--refresh", action="store_true", help="fetch the data now")
        parser.add_argument("--no-check", dest="check", action="store_false",
                            help="save without reading the source first (for a source that "
                                 "is offline on purpose); by default a source that cannot be "
                                 "read is not saved")

    def handle(self, *args: Any, **opts: Any) -> None:
        entry: dict[str, Any] = {"provider": opts["provider"], "host": opts["host"],
                                 "id": opts["id"]}
        options: dict[str, Any] = {}
        if opts["options"]:
            options.update(self._json(opts["options"], "--options"))
        options.update(dict(_key_value(item) for item in opts["option"]))
        if options or opts["replace_options"]:
            entry["options"] = options
        for key in ("name", "description", "ttl", "id_field", "display_field", "geometry_type",
                    "max_record_count", "enabled", "start_time_field", "end_time_field"):
            if opts[key] is not None:
                entry[key] = opts[key]
        if opts["fields"]:
            entry["fields"] = self._json(opts["fields"], "--fields")
        found = None
        try:
            with transaction.atomic():  # a failing check or refresh leaves nothing behind
                dataset, created = save_dataset(entry, merge_options=not opts["replace_options"])
                if opts["check"]:
                    found = self._check(dataset)
                layers = None
                if opts["refresh"]:
                    try:
                        layers = data.refresh(dataset, keep_hot=False, trigger="command",
                                              built=found.copy if found else None)
                    except KoopError as exc:
                        raise CommandError(
                            "Refresh failed: " + failure_message(location_of(dataset), exc)
                            + " Nothing was saved.") from None
        except ValidationError as exc:
            raise CommandError(describe(exc)) from None
        self.stdout.write(f"{'Created' if created else 'Updated'} {dataset.route_label}: "
                          f"{dataset.feature_server_path()}/0")
        if layers is not None:
            self.stdout.write(f"Refreshed: {layers.count} features, version {layers.version}")

    def _check(self, dataset: Any) -> Probe:
        """Read the source as a refresh would and say what it holds; CommandError if it fails."""
        try:
            found = probe(dataset)
        except CheckFailed as exc:
            raise CommandError(f"{exc.message} Nothing was saved (--no-check saves without "
                               "reading the source).") from None
        self.stdout.write(f"Checked {found.location}: {found.summary}.")
        shown = [f for f in found.fields if f.type != "OID"]
        if shown:
            self.stdout.write("Fields: " + ", ".join(f"{f.name} ({f.type})" for f in shown))
        for row in found.rows[:3]:
            self.stdout.write("  " + ", ".join(f"{k}={v}" for k, v in row.items()))
        return found

    @staticmethod
    def _json(text: str, flag: str) -> Any:
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise CommandError(f"{flag} is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise CommandError(f"{flag} must be a JSON object")
        return value
