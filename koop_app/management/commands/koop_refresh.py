"""Refresh datasets now: ``manage.py koop_refresh geojson/places csv/stations`` or ``--all``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from koop_app import data
from koop_app.errors import KoopError
from koop_app.management.help import explain
from koop_app.models import Dataset


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
    help = (
        "Fetch datasets now and store their new copies, one after the other.\n"
        "\n"
        "Runs here, not on a Celery worker, with a progress bar on stderr. A failed refresh\n"
        "keeps the last good copy and records its error; the command goes on with the next\n"
        "dataset and exits non-zero at the end."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        explain(parser, """
            manage.py koop_refresh geojson/places csv/stations
            manage.py koop_refresh --all --no-progress
        """)
        parser.add_argument("datasets", nargs="*", metavar="DATASET",
                            help="provider/[host/]id as koop_cache lists it, or the "
                                 "dataset's primary key")
        parser.add_argument("--all", action="store_true",
                            help="every enabled dataset of an enabled cached provider")
        parser.add_argument("--no-progress", action="store_true",
                            help="no progress bar (it goes to stderr)")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["all"]:
            targets = [dataset for dataset in Dataset.objects.select_related("provider").filter(
                enabled=True, provider__enabled=True) if dataset.is_cached]
        elif opts["datasets"]:
            targets = [find(label) for label in opts["datasets"]]
        else:
            raise CommandError("Name datasets or use --all.")
        failed = 0
        for dataset in targets:
            bar = None if opts["no_progress"] else ProgressBar(dataset.route_label, self.stderr)
            try:
                layers = data.refresh(dataset, keep_hot=False, trigger="command",
                                      on_progress=bar.update if bar else None)
            except KoopError as exc:
                if bar:
                    bar.close()
                failed += 1
                self.stderr.write(f"{dataset.route_label}: failed: {exc.message}")
                continue
            if bar:
                bar.close()
            self.stdout.write(f"{dataset.route_label}: {layers.count} features, "
                              f"version {layers.version}")
        if failed:
            raise CommandError(f"{failed} of {len(targets)} refreshes failed")


class ProgressBar:
    """A tqdm bar of one refresh: bytes read while fetching, then features normalised."""

    def __init__(self, label: str, out: Any) -> None:
        self.label = label
        self.bar = tqdm(desc=f"{label} start", unit="B", unit_scale=True, file=out,
                        mininterval=0.5, dynamic_ncols=True, leave=True)
        self.phase = "start"

    def update(self, phase: str, bytes_read: int, bytes_total: int | None,
               features: int) -> None:
        changed = phase != self.phase
        if changed:
            self.phase = phase
            self.bar.set_description_str(f"{self.label} {phase}", refresh=False)
        if bytes_total and self.bar.total != bytes_total:
            self.bar.total = bytes_total
        if bytes_read > self.bar.n:
            self.bar.update(bytes_read - self.bar.n)
        if features:
            self.bar.set_postfix_str(f"{features} features", refresh=False)
        if changed:
            self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
