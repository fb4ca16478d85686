"""Refresh datasets now: ``manage.py koop_refresh geojson/places csv/stations`` or ``--all``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from koop_app import data
from koop_app.errors import KoopError
from koop_app.models import Dataset, Provider


def find(label: str) -> Dataset:
    """A dataset by its route label (provider/[host/]id) or primary key."""
    rows = Dataset.objects.select_related("provider")
    if label.isdigit():
        found = rows.filter(pk=int(label)).first()
    else:
        found = next((d for d in rows if d.route_label == label), None)
    if found is None:
        raise CommandError(f"No dataset {label!r} (use provider/id, as koop_cache lists them)")
    return found


class Command(BaseCommand):
    help = "Fetch datasets now and store their new copies."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("datasets", nargs="*", help="provider/[host/]id or primary key")
        parser.add_argument("--all", action="store_true", help="every enabled cached dataset")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["all"]:
            targets = list(Dataset.objects.select_related("provider").filter(
                enabled=True, provider__enabled=True, provider__cache_policy=Provider.CACHED))
        elif opts["datasets"]:
            targets = [find(label) for label in opts["datasets"]]
        else:
            raise CommandError("Name datasets or use --all.")
        failed = 0
        for dataset in targets:
            try:
                layers = data.refresh(dataset, keep_hot=False, trigger="command")
            except KoopError as exc:
                failed += 1
                self.stderr.write(f"{dataset.route_label}: failed: {exc.message}")
                continue
            self.stdout.write(f"{dataset.route_label}: {layers.count} features, "
                              f"version {layers.version}")
        if failed:
            raise CommandError(f"{failed} of {len(targets)} refreshes failed")
