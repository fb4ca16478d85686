"""Celery beat's five models sit under one link in the admin index and sidebar (issue 11)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask

SCHEDULE_LISTS = ["intervalschedule", "crontabschedule", "solarschedule", "clockedschedule"]


def beat_links(page: str) -> list[str]:
    """The links of the index or sidebar to django-celery-beat's model lists."""
    return sorted(set(re.findall(r'href="/admin/django_celery_beat/(\w+)/"', page)))


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root", "", "pw")


@pytest.mark.django_db
def test_one_link_in_the_index_and_the_sidebar(client, superuser, make_dataset):
    client.force_login(superuser)
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    assert beat_links(index.content.decode()) == ["periodictask"]
    # the sidebar of any admin page lists the same
    dataset = make_dataset("geojson", "a", {"type": "FeatureCollection", "features": []},
                           ttl=100)
    page = client.get(reverse("admin:koop_app_dataset_changelist")).content.decode()
    sidebar = page.split('id="nav-sidebar"', 1)[1]
    assert beat_links(sidebar) == ["periodictask"]
    app = client.get(reverse("admin:app_list", args=["django_celery_beat"]))
    assert beat_links(app.content.decode()) == ["periodictask"]
    # The periodic tasks' page links every schedule list, and those still work.
    tasks = client.get(reverse("admin:django_celery_beat_periodictask_changelist"))
    text = tasks.content.decode()
    assert f"koop: refresh dataset {dataset.pk}" in text
    links = re.search(r'<p id="koop-schedule-links".*?</p>', text, re.S).group(0)
    assert beat_links(links) == sorted(SCHEDULE_LISTS)
    assert "Intervals</a> (1)" in links  # the dataset's schedule
    for name in SCHEDULE_LISTS:
        assert client.get(f"/admin/django_celery_beat/{name}/").status_code == 200
    interval = IntervalSchedule.objects.get()
    assert client.get(reverse("admin:django_celery_beat_intervalschedule_change",
                              args=[interval.pk])).status_code == 200
    # the task form keeps its add/change buttons for the schedules
    task = PeriodicTask.objects.get()
    form = client.get(reverse("admin:django_celery_beat_periodictask_change", args=[task.pk]))
    assert 'id="add_id_interval"' in form.content.decode()


@pytest.mark.django_db
def test_staff_with_limited_permissions(client):
    user = get_user_model().objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(user)
    index = client.get(reverse("admin:index"))  # no permission at all: an empty index
    assert index.status_code == 200 and beat_links(index.content.decode()) == []
    user.user_permissions.set(Permission.objects.filter(
        codename__in=["view_dataset", "view_periodictask", "view_intervalschedule"]))
    index = client.get(reverse("admin:index")).content.decode()
    assert beat_links(index) == ["periodictask"]
    assert "/admin/koop_app/dataset/" in index
    tasks = client.get(reverse("admin:django_celery_beat_periodictask_changelist"))
    links = re.search(r'<p id="koop-schedule-links".*?</p>', tasks.content.decode(),
                      re.S).group(0)
    assert beat_links(links) == ["intervalschedule"]  # only what they may see
    assert client.get("/admin/django_celery_beat/crontabschedule/").status_code == 403
