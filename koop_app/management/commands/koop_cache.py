"""Show each dataset's cache state: version, features, size, last refresh, expiry, error."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from koop_app.data import cache
from koop_app.management.help import explain
from koop_app.models import Dataset


class Command(BaseCommand):
    help = (
        "List every dataset with the state of its cached copy.\n"
        "\n"
        "Columns: the dataset (provider/[host/]id, as koop_refresh takes it), the cached\n"
        "version, its feature count and size, the last refresh, when the copy expires (a\n"
        "refresh is scheduled before that) and the last refresh error, if any."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        explain(parser, """
            manage.py koop_cache
            manage.py koop_cache | grep -v '(not cached)'
        """)

    def handle(self, *args: Any, **opts: Any) -> None:
        self.stdout.write(f"{'dataset':<32} {'version':<18} {'features':>9} {'size KiB':>9} "
                          f"{'last refresh':<20} {'expires':<20} error")
        for dataset in Dataset.objects.select_related("provider"):
            pointer = cache.get_pointer(dataset.cache_key) if dataset.cache_key else None
            size = f"{pointer.size / 1024:.0f}" if pointer else "-"
            refreshed = dataset.last_refresh.strftime("%Y-%m-%d %H:%M:%S") \
                if dataset.last_refresh else "never"
            expires = dataset.expires_at.strftime("%Y-%m-%d %H:%M:%S") \
                if dataset.expires_at else "-"
            version = pointer.version if pointer else "(not cached)"
            self.stdout.write(f"{dataset.route_label:<32} {version:<18} "
                              f"{dataset.feature_count or 0:>9} {size:>9} {refreshed:<20} "
                              f"{expires:<20} {dataset.last_error[:60]}")
