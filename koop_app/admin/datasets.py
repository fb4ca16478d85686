"""The admin of datasets: list, page, cache state, refresh and clear actions."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import Q, QuerySet
from django.http import HttpRequest, JsonResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html
from django.utils.translation import ngettext

from koop_app import data, refresh_progress
from koop_app.admin import files
from koop_app.admin.forms import (
    OPTIONS_CLASS,
    OPTIONS_FIELDSET,
    DatasetForm,
    check_panel,
    options_description,
    provider_options_view,
)
from koop_app.errors import KoopError
from koop_app.models import Dataset, RefreshLog
from koop_app.tasks import refresh_dataset
from koop_app.workers import live_workers, queue_is_eager


class HasErrorFilter(admin.SimpleListFilter):
    title = "last refresh"
    parameter_name = "refresh_state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("error", "failed"), ("ok", "succeeded"), ("never", "never refreshed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Dataset]) -> QuerySet[Dataset]:
        if self.value() == "error":
            return queryset.exclude(last_error="")
        if self.value() == "ok":
            return queryset.filter(last_error="", last_refresh__isnull=False)
        if self.value() == "never":
            return queryset.filter(last_refresh__isnull=True)
        return queryset


class RefreshLogInline(admin.TabularInline):
    """The latest refreshes of a dataset, newest first."""

    model = RefreshLog
    extra = 0
    max_num = 0
    can_delete = False
    fields = ["started", "trigger", "state", "phase", "duration_ms", "ok", "features", "version",
              "error"]
    readonly_fields = fields
    verbose_name_plural = "refresh history"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    form = DatasetForm
    inlines = [RefreshLogInline]
    list_display = ["__str__", "provider", "route", "enabled", "access", "feature_count",
                    "last_refresh", "expires_at", "state", "feature_server"]
    list_filter = ["provider", "enabled", "access", HasErrorFilter]
    filter_horizontal = ["allowed_users", "allowed_groups"]
    search_fields = ["name", "dataset_id", "host", "description"]
    list_select_related = ["provider"]
    actions = ["refresh_now", "clear_cache"]
    readonly_fields = ["feature_server", "source_check", "schedule", "cache_usage",
                       "refresh_progress", "cache_key", "version",
                       "last_refresh", "expires_at", "feature_count", "refresh_duration_ms",
                       "last_error", "last_error_at"]
    fieldsets = [
        (None, {"fields": ["provider", "host", "dataset_id", "name", "description", "enabled",
                           "feature_server"]}),
        ("Access", {"fields": ["access", "allowed_users", "allowed_groups"],
                    "description": "Who may read this dataset, on every route of every "
                                   "output. Clients sign in with generateToken."}),
        (OPTIONS_FIELDSET, {"fields": [], "classes": [OPTIONS_CLASS]}),  # see get_fieldsets
        ("Check the source", {"fields": ["source_check", "skip_check"]}),
        ("Cache", {"fields": ["ttl", "schedule"]}),
        ("Queries", {"fields": ["case_sensitive_strings"]}),
        ("Metadata overrides", {"fields": ["id_field", "display_field", "geometry_type",
                                           "fields_override", "max_record_count",
                                           "start_time_field", "end_time_field"],
                                "classes": ["collapse"]}),
        ("Cache state", {"fields": ["refresh_progress", "cache_usage", "cache_key", "version",
                                    "last_refresh",
                                    "expires_at",
                                    "feature_count", "refresh_duration_ms", "last_error",
                                    "last_error_at"]}),
    ]

    @admin.display(description="route")
    def route(self, obj: Dataset) -> str:
        return obj.route_label

    class Media:
        js = ["koop_app/progress.js"]

    def get_urls(self) -> list[Any]:
        progress = path("progress/", self.admin_site.admin_view(self.progress_view),
                        name="koop_app_dataset_progress")
        options = path("provider-options/", self.admin_site.admin_view(self.options_view),
                       name="koop_app_dataset_provider_options")
        return [progress, options, *files.admin_urls(self.admin_site), *super().get_urls()]

    def options_view(self, request: HttpRequest) -> JsonResponse:
        """The option fields of another provider, swapped into the form by dataset_form.js."""
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            return JsonResponse({"error": "permission denied"}, status=403)
        return provider_options_view(request)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        """The option fields of the provider being edited go into the options fieldset."""
        form = self._form_for(request, obj)
        fieldsets = []
        for name, spec in super().get_fieldsets(request, obj):
            if name == OPTIONS_FIELDSET:
                spec = {**spec, "fields": form.option_field_names,
                        "description": options_description(form.provider_row)}
            fieldsets.append((name, spec))
        return fieldsets

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False,
                 **kwargs: Any) -> Any:
        fields = kwargs.pop("fields", None)
        if fields is None:
            fields = flatten_fieldsets(self.get_fieldsets(request, obj))
        # The option fields are the form's own (built from the provider's schema).
        kwargs["fields"] = [name for name in fields
                            if not name.startswith("opt_") and name != "unknown_options"]
        form = super().get_form(request, obj, change, **kwargs)
        form.options_url = reverse(f"{self.admin_site.name}:koop_app_dataset_provider_options")
        return form

    def _form_for(self, request: HttpRequest, obj: Any) -> DatasetForm:
        """A throwaway form telling which provider (and option fields) this request edits."""
        key = getattr(obj, "pk", None)
        kept = getattr(request, "_koop_option_forms", {})
        if key not in kept:
            data = request.POST if request.method == "POST" else None
            initial = {"provider": request.GET["provider"]} if request.GET.get("provider") \
                else {}
            kept[key] = DatasetForm(data=data, instance=obj, initial=initial)
            request._koop_option_forms = kept  # type: ignore[attr-defined]
        return kept[key]

    def save_model(self, request: HttpRequest, obj: Dataset, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        found = getattr(form, "probe", None)
        if found is not None and found.copy is not None and obj.enabled:
            try:  # the copy the check made: stored now, the source is not fetched again
                data.refresh(obj, trigger="admin", built=found.copy)
            except KoopError as exc:
                self.message_user(request, f"Saved, but storing the checked copy failed: "
                                           f"{exc.admin_message}", messages.WARNING)

    def progress_view(self, request: HttpRequest) -> JsonResponse:
        """The live progress of the datasets named in ``ids`` (polled by progress.js)."""
        if not self.has_view_permission(request):
            return JsonResponse({"error": "permission denied"}, status=403)
        ids = [int(part) for part in request.GET.get("ids", "").split(",")[:500]
               if part.strip().isdigit()]
        found = refresh_progress.of_datasets(ids)
        return JsonResponse({"datasets": {str(pk): item for pk, item in found.items()}})

    @staticmethod
    def _progress_span(obj: Dataset) -> str:
        return format_html('<span class="koop-progress" data-koop-progress="{}" '
                           'data-koop-progress-url="{}"></span>', obj.pk,
                           reverse("admin:koop_app_dataset_progress"))

    @admin.display(description="state")
    def state(self, obj: Dataset) -> str:
        if obj.last_error:
            shown = format_html('<span title="{}" style="color:#ba2121">error</span>',
                                obj.last_error)
        else:
            shown = "cached" if obj.version else "not cached"
        return format_html("{}<br>{}", shown, self._progress_span(obj))

    @admin.display(description="refresh running")
    def refresh_progress(self, obj: Dataset) -> str:
        if not obj.pk:
            return "-"
        now = refresh_progress.of_datasets([obj.pk]).get(obj.pk)
        return format_html('<span class="koop-progress" data-koop-progress="{}" '
                           'data-koop-progress-url="{}">{}</span>', obj.pk,
                           reverse("admin:koop_app_dataset_progress"),
                           now["text"] if now else "none")

    @admin.display(description="FeatureServer")
    def feature_server(self, obj: Dataset) -> str:
        if not obj.pk:
            return "-"
        path = obj.feature_server_path()
        if path is None:
            return "-"
        layer = format_html('<a href="{}/0" target="_blank">{}/0</a>', path, path)
        try:  # the map preview (koop_app/outputs/pages), when that output is mounted
            preview = reverse(f"koop:{obj.provider.name}:pages-preview-service",
                              kwargs=obj.route_kwargs())
        except NoReverseMatch:
            return layer
        return format_html('{} · <a href="{}" target="_blank">map preview</a>', layer, preview)

    @admin.display(description="cached copy")
    def cache_usage(self, obj: Dataset) -> str:
        from koop_app.data import cache

        if not obj.cache_key:
            return "not cached yet"
        pointer = cache.get_pointer(obj.cache_key)
        use = cache.counts(obj.cache_key)
        size = f"{pointer.size / 1024:.0f} KiB in cache, " if pointer else "not in the cache, "
        return (f"{size}{use.get('hits', 0)} hits, {use.get('misses', 0)} misses "
                "(hits reach the count within a second)")

    @admin.display(description="refresh schedule")
    def schedule(self, obj: Dataset) -> str:
        from django_celery_beat.models import PeriodicTask

        from koop_app.schedules import task_name

        task = PeriodicTask.objects.filter(name=task_name(obj)).select_related(
            "interval").first() if obj.pk else None
        if task is None:
            return "none (pass-through or not saved)"
        state = "active" if task.enabled else "paused"
        return f"every {task.interval.every} s ({state}), last run {task.last_run_at or 'never'}"

    @admin.display(description="what the source holds")
    def source_check(self, obj: Dataset) -> str:
        return check_panel(obj)

    @admin.action(description="Refresh now")
    def refresh_now(self, request: HttpRequest, queryset: QuerySet[Dataset]) -> None:
        """Queue the refreshes when a Celery worker is there to run them, else run them here."""
        if not queue_is_eager() and not live_workers():
            self.message_user(request, "No Celery worker is running (none answered a ping): "
                                       "refreshing here instead of queueing.", messages.WARNING)
        elif not queue_is_eager():
            try:
                for dataset in queryset:
                    refresh_dataset.delay(dataset.pk, trigger="admin")
            except Exception as exc:  # the broker is down: say so and refresh here instead
                self.message_user(request, f"The task queue is unavailable ({exc}); "
                                           "refreshing here.", messages.WARNING)
            else:
                count = queryset.count()
                self.message_user(request, ngettext(
                    "Queued the refresh of %d dataset for the Celery workers.",
                    "Queued the refresh of %d datasets for the Celery workers.", count) % count,
                    messages.SUCCESS)
                return
        done, failed = 0, []
        for dataset in queryset.select_related("provider"):
            try:
                data.refresh(dataset, trigger="admin")
                done += 1
            except KoopError as exc:
                failed.append(f"{dataset}: {exc.message}")
        if done:
            self.message_user(request, ngettext("Refreshed %d dataset.", "Refreshed %d datasets.",
                                                done) % done, messages.SUCCESS)
        for line in failed:
            self.message_user(request, f"Refresh failed for {line}", messages.ERROR)

    @admin.action(description="Clear cache")
    def clear_cache(self, request: HttpRequest, queryset: QuerySet[Dataset]) -> None:
        cleared = sum(1 for dataset in queryset.select_related("provider")
                      if data.clear(dataset))
        self.message_user(request, ngettext("Cleared the cache of %d dataset.",
                                            "Cleared the cache of %d datasets.", cleared)
                          % cleared, messages.SUCCESS)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Dataset],
                           search_term: str) -> tuple[QuerySet[Dataset], bool]:
        queryset, distinct = super().get_search_results(request, queryset, search_term)
        if search_term:
            queryset |= self.model.objects.filter(Q(provider__name__iexact=search_term))
        return queryset, distinct
