"""The refresh recorder: history rows, the dataset's state, progress, and interrupted runs."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from koop_app.data import recorder
from koop_app.data.flight import process_name
from koop_app.errors import SourceFormatError
from koop_app.models import Dataset, RefreshLog


@pytest.fixture
def dataset(make_dataset):
    return make_dataset("geojson", "rec")


@pytest.mark.django_db
def test_a_refresh_is_running_in_the_history_then_done(dataset):
    recording = recorder.start(dataset, "admin")
    row = RefreshLog.objects.get(pk=recording.row_id)
    assert (row.state, row.trigger, row.process) == (RefreshLog.RUNNING, "admin", process_name())
    recording.progress("fetch", 1000, 4000, 0)
    assert recorder.read_progress([dataset.pk])[dataset.pk]["bytes_read"] == 1000
    recording.succeeded(key="geojson::rec", version="v1", features=4, fetched_at=1e9, ttl=60)
    row.refresh_from_db()
    assert (row.state, row.ok, row.features, row.version) == (RefreshLog.DONE, True, 4, "v1")
    state = Dataset.objects.get(pk=dataset.pk)
    assert (state.version, state.feature_count, state.last_error) == ("v1", 4, "")
    assert recorder.read_progress([dataset.pk])[dataset.pk]["running"] is False


@pytest.mark.django_db
def test_progress_is_written_a_few_times_per_second_at_most(dataset, django_assert_max_num_queries):
    recording = recorder.start(dataset, "command")
    recording.progress("fetch", 0, None, 0)  # a new phase: written at once
    with django_assert_max_num_queries(0):
        for read in range(1, 1000):
            recording.progress("fetch", read, None, 0)
    assert recorder.read_progress([dataset.pk])[dataset.pk]["bytes_read"] < 999
    recording.progress("normalize", 999, None, 10)
    assert recorder.read_progress([dataset.pk])[dataset.pk]["phase"] == "normalize"
    assert RefreshLog.objects.get(pk=recording.row_id).phase == "normalize"


@pytest.mark.django_db
def test_a_failed_refresh_keeps_its_reason(dataset):
    recording = recorder.start(dataset, "schedule")
    recording.failed(SourceFormatError(log_message="unparsable content"))
    row = RefreshLog.objects.get(pk=recording.row_id)
    assert (row.state, row.ok, row.features) == (RefreshLog.DONE, False, None)
    assert row.error == "SourceFormatError: unparsable content"
    assert "unparsable" in Dataset.objects.get(pk=dataset.pk).last_error


def dead_process() -> str:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return process_name(child.pid)


@pytest.mark.django_db
def test_a_refresh_whose_process_died_is_interrupted_in_the_history(dataset):
    killed = recorder.open_row(dataset, "miss")
    RefreshLog.objects.filter(pk=killed.pk).update(process=dead_process())
    alive = recorder.open_row(dataset, "admin")
    assert recorder.reap([dataset.pk]) == 1
    killed.refresh_from_db()
    assert killed.state == RefreshLog.INTERRUPTED and not killed.ok
    assert killed.error.startswith("interrupted: its process")
    assert RefreshLog.objects.get(pk=alive.pk).state == RefreshLog.RUNNING


@pytest.mark.django_db
def test_a_dead_workers_row_waits_for_the_worker_to_come_back_first(dataset):
    row = recorder.open_row(dataset, "admin", task_id="t1", worker="celery@here")
    RefreshLog.objects.filter(pk=row.pk).update(process=dead_process())
    assert recorder.reap() == 0  # its worker may restart and queue it again itself
    RefreshLog.objects.filter(pk=row.pk).update(
        progressed=timezone.now() - timedelta(seconds=recorder.WORKER_REAP_SECONDS + 1))
    assert recorder.reap() == 1
    row.refresh_from_db()
    assert row.state == RefreshLog.INTERRUPTED and "celery@here" in row.error


@pytest.mark.django_db
def test_stuck_refreshes_made_no_progress_for_a_while(dataset):
    row = recorder.open_row(dataset, "admin")
    assert recorder.stuck(60) == []
    RefreshLog.objects.filter(pk=row.pk).update(progressed=timezone.now() - timedelta(hours=1))
    assert [r.pk for r in recorder.stuck(60)] == [row.pk]
