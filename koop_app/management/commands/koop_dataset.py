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
from koop_app.management.help import explain
from koop_app.probe import CheckFailed, Probe, failure_message, location_of, probe


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise CommandError(f"--option expects key=value, got {text!r}")
    return key.strip(), value


class Command(BaseCommand):
    help = (
        "Create or update one dataset: a provider, its :host/:id route and options.\n"
        "\n"
        "A dataset that exists (same provider, host and id) is updated: flags not given keep\n"
        "their stored values, and --option/--options add to the stored options unless\n"
        "--replace-options. Options are checked against the provider's schema (list them\n"
        "with `manage.py koop_providers PROVIDER`); paths are relative to KOOP['DATA_DIR'].\n"
        "The source is read first and what was found is printed (features, geometry, fields,\n"
        "a few rows); a source that cannot be read saves nothing, nor does a failing --refresh.\n"
        "Prints the dataset's FeatureServer layer path."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        explain(parser, """
            manage.py koop_dataset geojson parks --option source=parks.geojson --name Parks
            manage.py koop_dataset csv wells --option source=https://example.org/wells.csv \\
                --option delimiter=";" --ttl 3600 --refresh
            manage.py koop_dataset csv stations --options '{"source": "s.csv", "wkt": "geom"}'
            manage.py koop_dataset geojson parks --disable
        """)
        parser.add_argument("provider",
                            help="the provider's name, e.g. geojson or csv (koop_providers "
                                 "lists them)")
        parser.add_argument("id", nargs="?", default="",
                            help="the dataset's id: its :id segment in "
                                 "/<provider>/rest/services/[<host>/]<id>/FeatureServer; leave "
                                 "out for a provider whose routes take no :id")
        parser.add_argument("--host", default="",
                            help="the :host segment, for a provider whose routes take one "
                                 "(koop_providers says which)")
        parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                            help="one provider option, e.g. source=parks.geojson; repeat for "
                                 "more")
        parser.add_argument("--options", default=None, metavar="JSON",
                            help='provider options as a JSON object, e.g. \'{"source": '
                                 '"s.csv"}\'; --option values win over its keys')
        parser.add_argument("--replace-options", action="store_true",
                            help="replace the stored options instead of adding to them")
        parser.add_argument("--name", help="the service's name shown to clients (default: "
                                           "provider/[host/]id)")
        parser.add_argument("--description", help="the service's description shown to clients")
        parser.add_argument("--ttl", type=int, metavar="SECONDS",
                            help="how long a cached copy stays fresh before it is refreshed "
                                 "(default: the provider's, then KOOP['DEFAULT_TTL'])")
        parser.add_argument("--id-field", metavar="FIELD",
                            help="an integer field that identifies features (OBJECTID); "
                                 "default: stable ids assigned per feature")
        parser.add_argument("--display-field", metavar="FIELD",
                            help="the field clients show as a feature's label")
        parser.add_argument("--geometry-type", metavar="TYPE",
                            help="esriGeometryPoint, esriGeometryMultipoint, "
                                 "esriGeometryPolyline or esriGeometryPolygon; default: "
                                 "detected from the data")
        parser.add_argument("--max-record-count", type=int, metavar="N",
                            help="features per query page (the layer's maxRecordCount)")
        parser.add_argument("--start-time-field", metavar="FIELD",
                            help="a date field: the layer becomes time-aware (timeInfo)")
        parser.add_argument("--end-time-field", metavar="FIELD",
                            help="a date field ending each feature's time extent (with "
                                 "--start-time-field)")
        parser.add_argument("--fields", metavar="JSON",
                            help='aliases and types per field, e.g. \'{"pop": {"alias": '
                                 '"Population", "type": "esriFieldTypeInteger"}}\'')
        state = parser.add_mutually_exclusive_group()
        state.add_argument("--enable", dest="enabled", action="store_true", default=None,
                           help="serve the dataset (new datasets are enabled)")
        state.add_argument("--disable", dest="enabled", action="store_false",
                           help="stop serving the dataset; it stays registered")
        parser.add_argument("--refresh", action="store_true",
                            help="fetch the data now and store its first copy")
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
