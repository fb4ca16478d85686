"""A fake GitHub API on loopback, files in a temporary folder, and github datasets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from koop_app.models import Dataset, Provider

from .server import FakeGitHub


@pytest.fixture
def github(tmp_path: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(tmp_path / "repos") as server:
        yield server


@pytest.fixture
def github_dataset(db: Any, github: FakeGitHub):
    """``github_dataset("octo::maps", "data::parks.geojson", token=..., ...)``, saved."""

    def make(host: str, dataset_id: str, **options: Any) -> Dataset:
        rows = {p.name: p for p in Provider.sync_from_registry()}
        dataset = Dataset(provider=rows["github"], host=host, dataset_id=dataset_id,
                          options={"api_url": github.url, **options})
        dataset.full_clean()
        dataset.save()
        return dataset

    return make
