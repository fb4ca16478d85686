"""Write the demo data files and register (or update) the demo datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from koop_app.conf import koop_settings
from koop_app.demo import DEMO_DATASETS, write_demo_files
from koop_app.management.help import explain
from koop_app.models import Dataset, Provider


class Command(BaseCommand):
    help = (
        "Write the demo data under KOOP['DATA_DIR']/demo and register its datasets.\n"
        "\n"
        "Run by `make run`. Safe to run again: the files are written anew and the datasets\n"
        "updated in place. Prints each demo layer's FeatureServer path."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        explain(parser, """
            manage.py koop_demo
            manage.py koop_demo && manage.py koop_refresh --all
        """)

    def handle(self, *args: Any, **options: Any) -> None:
        write_demo_files(Path(koop_settings.DATA_DIR))
        providers = {p.name: p for p in Provider.sync_from_registry()}
        for provider_name, dataset_id, source, name, description in DEMO_DATASETS:
            if provider_name not in providers:
                self.stderr.write(f"Provider {provider_name!r} is not registered; skipped.")
                continue
            dataset, _ = Dataset.objects.update_or_create(
                provider=providers[provider_name], host="", dataset_id=dataset_id,
                defaults={"name": name, "description": description,
                          "options": {"source": source}},
            )
            path = dataset.feature_server_path()
            self.stdout.write(f"  {name:<10} {path}/0")
        self.stdout.write(self.style.SUCCESS("Demo datasets registered."))
