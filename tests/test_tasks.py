"""Refresh tasks and their schedules in django-celery-beat (tasks run eagerly here)."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest
from django_celery_beat.models import PeriodicTask

from koop_app import data, schedules
from koop_app.models import Dataset, Provider
from koop_app.tasks import refresh_dataset
from tests.conftest import age_copy, collection, feature, point, write_json


def doc(n: int) -> dict:
    return collection([feature({"n": i}, point(i, i)) for i in range(n)])


@pytest.mark.django_db
def test_schedule_follows_the_dataset(make_dataset):
    dataset = make_dataset("geojson", "s", doc(1), ttl=600)
    task = PeriodicTask.objects.get(name=schedules.task_name(dataset))
    assert task.task == "koop_app.tasks.refresh_dataset"
    assert orjson.loads(task.args) == [dataset.pk]
    assert task.interval.every == 480  # 80% of the TTL: before it runs out
    assert task.enabled

    dataset.ttl = 10
    dataset.save()
    task.refresh_from_db()
    assert task.interval.every == 30  # KOOP["MIN_REFRESH_SECONDS"]

    dataset.enabled = False
    dataset.save()
    task.refresh_from_db()
    assert not task.enabled

    dataset.delete()
    assert not PeriodicTask.objects.filter(name=schedules.task_name(dataset)).exists()


@pytest.mark.django_db
def test_pass_through_datasets_have_no_active_schedule(make_dataset):
    dataset = make_dataset("geojson", "p", doc(1))
    provider = Provider.objects.get(name="geojson")
    provider.cache_policy = Provider.PASS_THROUGH
    provider.save()
    task = PeriodicTask.objects.get(name=schedules.task_name(dataset))
    assert not task.enabled


@pytest.mark.django_db
def test_refresh_task_stores_a_new_version(make_dataset, data_dir):
    dataset = make_dataset("geojson", "t", doc(2))
    first = refresh_dataset.apply(args=[dataset.pk]).get()
    write_json(data_dir / "t.geojson", doc(3))
    second = refresh_dataset.apply(args=[dataset.pk], kwargs={"trigger": "admin"}).get()
    assert (first["features"], second["features"]) == (2, 3)
    assert first["version"] != second["version"]
    dataset.refresh_from_db()
    assert dataset.version == second["version"]


@pytest.mark.django_db
def test_failing_refresh_retries_and_keeps_the_last_copy(make_dataset, data_dir, monkeypatch):
    dataset = make_dataset("geojson", "f", doc(2))
    good = data.refresh(dataset)
    (data_dir / "f.geojson").write_bytes(b"{broken")
    countdowns = []
    original = refresh_dataset.retry

    def recording_retry(*args, **kwargs):
        countdowns.append(kwargs.get("countdown"))
        return original(*args, **kwargs)

    monkeypatch.setattr(refresh_dataset, "retry", recording_retry)
    result = refresh_dataset.apply(args=[dataset.pk], kwargs={"trigger": "admin"})
    assert result.failed()
    assert countdowns[:3] == [60, 120, 240]  # exponential backoff
    dataset.refresh_from_db()
    assert "SourceFormatError" in dataset.last_error
    assert dataset.version == good.version
    assert data.get_table(dataset, data.provider_request(dataset)).count == 2


@pytest.mark.django_db
def test_refresh_of_a_deleted_or_disabled_dataset_is_skipped(make_dataset):
    dataset = make_dataset("geojson", "gone", doc(1))
    Dataset.objects.filter(pk=dataset.pk).update(enabled=False)
    assert refresh_dataset.apply(args=[dataset.pk]).get()["skipped"] == "disabled"
    assert refresh_dataset.apply(args=[99999]).get()["skipped"] == "deleted"


@pytest.mark.django_db
def test_a_ttl_sent_with_the_data_sets_the_schedule(make_dataset):
    dataset = make_dataset("geojson", "ttl", {**doc(1), "ttl": 1000}, ttl=100)
    data.refresh(dataset)
    task = PeriodicTask.objects.get(name=schedules.task_name(dataset))
    assert task.interval.every == 800


@pytest.mark.django_db
def test_the_task_records_why_it_ran(make_dataset):
    from koop_app.models import RefreshLog

    dataset = make_dataset("geojson", "why", doc(1))
    refresh_dataset.delay(dataset.pk)  # as beat calls it: the id alone
    refresh_dataset.delay(dataset.pk, trigger="admin")
    triggers = RefreshLog.objects.filter(dataset=dataset).values_list("trigger", flat=True)
    assert sorted(triggers) == ["admin", "schedule"]


def test_workers_yield_the_cpu_to_web_processes():
    script = ("import os; from koopsite.celery import _yield_to_web_processes as lower;"
              "before = os.nice(0); lower(); print(os.nice(0) - before)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, env={**os.environ, "KOOP_WORKER_NICE": "7"})
    assert out.stdout.strip() == "7"


@pytest.mark.django_db
def test_a_queued_refresh_is_skipped_when_another_ran_since(make_dataset):
    from koop_app.models import RefreshLog

    dataset = make_dataset("geojson", "backlog", doc(1), ttl=600)
    data.refresh(dataset)
    dataset.refresh_from_db()  # the copy is fresh: a backlog of scheduled runs finds it so
    assert refresh_dataset.delay(dataset.pk).get() == {"dataset": dataset.pk,
                                                       "skipped": "fresh"}
    assert refresh_dataset.delay(dataset.pk, trigger="stale").get()["skipped"] == "fresh"
    assert "version" in refresh_dataset.delay(dataset.pk, trigger="admin").get()
    assert RefreshLog.objects.filter(dataset=dataset).count() == 2

    age_copy(dataset.cache_key, 400)  # past half the TTL: the schedule's turn
    assert "version" in refresh_dataset.delay(dataset.pk).get()


def history_row(dataset, task_id: str, state: str, ok: bool = False, worker: str = ""):
    from django.utils import timezone

    from koop_app.models import RefreshLog

    return RefreshLog.objects.create(dataset=dataset, started=timezone.now(), trigger="admin",
                                     duration_ms=0, ok=ok, state=state, task_id=task_id,
                                     worker=worker)


@pytest.mark.django_db
def test_a_refresh_left_running_is_marked_interrupted_when_it_comes_back(make_dataset):
    from koop_app.models import RefreshLog

    dataset = make_dataset("geojson", "back", doc(2))
    history_row(dataset, "task-1", RefreshLog.RUNNING, worker="gone@host")
    refresh_dataset.apply((dataset.pk,), {"trigger": "admin"}, task_id="task-1").get()
    rows = {(row.state, row.ok) for row in RefreshLog.objects.filter(task_id="task-1")}
    assert rows == {(RefreshLog.INTERRUPTED, False), (RefreshLog.DONE, True)}


@pytest.mark.django_db
def test_a_second_delivery_of_a_finished_refresh_is_skipped(make_dataset):
    from koop_app.models import RefreshLog

    dataset = make_dataset("geojson", "twice", doc(2))
    history_row(dataset, "task-2", RefreshLog.DONE, ok=True)
    result = refresh_dataset.apply((dataset.pk,), {"trigger": "admin"}, task_id="task-2").get()
    assert result == {"dataset": dataset.pk, "skipped": "done"}


@pytest.mark.django_db
def test_a_refresh_that_keeps_killing_its_worker_is_given_up(make_dataset):
    from koop_app.models import RefreshLog
    from koop_app.tasks import MAX_INTERRUPTIONS

    dataset = make_dataset("geojson", "oom", doc(2))
    for _ in range(MAX_INTERRUPTIONS - 1):
        history_row(dataset, "task-3", RefreshLog.INTERRUPTED)
    history_row(dataset, "task-3", RefreshLog.RUNNING)
    result = refresh_dataset.apply((dataset.pk,), {"trigger": "admin"}, task_id="task-3").get()
    assert result == {"dataset": dataset.pk, "skipped": "interrupted"}
    assert not RefreshLog.objects.filter(task_id="task-3", state=RefreshLog.RUNNING).exists()


@pytest.mark.django_db
def test_a_restarted_worker_queues_what_its_node_left_running(make_dataset):
    from types import SimpleNamespace

    from koop_app.models import RefreshLog
    from koop_app.tasks import requeue_interrupted_refreshes

    dataset = make_dataset("geojson", "left", doc(3))
    history_row(dataset, "task-4", RefreshLog.RUNNING, worker="embedded@host")
    history_row(dataset, "task-5", RefreshLog.RUNNING, worker="other@host")  # alive elsewhere
    requeue_interrupted_refreshes(sender=SimpleNamespace(hostname="embedded@host"))
    mine = {(row.state, row.ok) for row in RefreshLog.objects.filter(task_id="task-4")}
    assert mine == {(RefreshLog.INTERRUPTED, False), (RefreshLog.DONE, True)}
    assert RefreshLog.objects.get(task_id="task-5").state == RefreshLog.RUNNING
    assert Dataset.objects.get(pk=dataset.pk).feature_count == 3
