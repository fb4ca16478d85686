"""Celery beat's models under one link: "Periodic tasks", whose list links the schedules.

django-celery-beat registers five models (periodic tasks and four kinds of schedule); the
dataset refreshes only need the tasks in view. The four schedule admins stay registered, so
that their pages and the task form's add/change buttons keep working, but they leave the
index and the sidebar (``has_module_permission`` is what Django's app list asks); the periodic
tasks' list links them, for whoever may see them.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.urls import reverse


class HiddenFromIndex:
    """A model admin kept out of the index and the sidebar; its pages still answer."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return False


def schedule_links(site: admin.AdminSite, request: HttpRequest,
                   models: list[type[Model]]) -> list[dict[str, Any]]:
    """The schedule lists this user may see: name, URL, count."""
    links = []
    for model in models:
        model_admin = site._registry.get(model)
        if model_admin is None or not model_admin.has_view_or_change_permission(request):
            continue
        opts = model._meta
        links.append({"name": str(opts.verbose_name_plural).capitalize(),
                      "url": reverse(f"{site.name}:{opts.app_label}_{opts.model_name}_changelist"),
                      "count": model._default_manager.count()})
    return links


def group_beat_models(site: admin.AdminSite = admin.site) -> None:
    """Re-register django-celery-beat's admins as described above (when it is installed)."""
    if not apps.is_installed("django_celery_beat"):
        return
    from django_celery_beat import admin as beat_admin  # registers them first
    from django_celery_beat.models import (
        ClockedSchedule,
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
        SolarSchedule,
    )

    schedules: list[tuple[type[Model], type[admin.ModelAdmin]]] = [
        (IntervalSchedule, beat_admin.IntervalScheduleAdmin),
        (CrontabSchedule, beat_admin.CrontabScheduleAdmin),
        (SolarSchedule, beat_admin.SolarScheduleAdmin),
        (ClockedSchedule, beat_admin.ClockedScheduleAdmin),
    ]
    for model, base in schedules:
        if site.is_registered(model):
            site.unregister(model)
        site.register(model, type(base.__name__, (HiddenFromIndex, base), {
            "__module__": __name__, "__doc__": base.__doc__}))

    class PeriodicTaskAdmin(beat_admin.PeriodicTaskAdmin):
        """The periodic tasks (one per cached dataset), with links to the schedules."""

        change_list_template = "admin/koop_app/beat/periodictask_change_list.html"

        def changelist_view(self, request: HttpRequest,
                            extra_context: dict[str, Any] | None = None) -> HttpResponse:
            links = schedule_links(self.admin_site, request, [model for model, _ in schedules])
            return super().changelist_view(request, {**(extra_context or {}),
                                                     "koop_schedule_links": links})

    if site.is_registered(PeriodicTask):
        site.unregister(PeriodicTask)
    site.register(PeriodicTask, PeriodicTaskAdmin)
