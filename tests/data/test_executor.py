"""The refresh executor: chosen once from the settings, a thread when there is no broker."""

from __future__ import annotations

import pytest

from koop_app.data import executors


def test_no_broker_means_a_thread_here(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert isinstance(executors.executor(), executors.ThreadExecutor)
    assert executors.executor() is executors.executor()  # chosen once


@pytest.fixture
def fresh_broker_pools():
    from koopsite.celery import app

    def forget() -> None:  # pools keep the broker they were made for
        app._pool = None
        app.amqp._producer_pool = None

    forget()
    yield
    forget()


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_broker_pools")
def test_a_broker_means_a_worker_and_a_thread_when_it_is_down(settings, make_dataset):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"  # nothing listens on port 9
    settings.CELERY_BROKER_CONNECTION_TIMEOUT = 0.5
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 0}
    chosen = executors.executor()
    assert isinstance(chosen, executors.CeleryExecutor)
    ran = []
    dataset = make_dataset("geojson", "exec")
    assert chosen.submit(dataset, "stale", lambda: ran.append(1)) == "thread"
    chosen.wait(5)
    assert ran == [1]
