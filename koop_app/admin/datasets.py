"""The admin of datasets: list, page, cache state, refresh and clear actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince, timeuntil
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
from koop_app.outputs.geoservices.html import map_viewer_link
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
    # Four narrow columns: the list fits a 1366 px window beside the filters (issue 11).
    list_display = ["dataset_label", "access_label", "cache_state", "service_links"]
    list_filter = ["provider", "enabled", "access", HasErrorFilter]
    filter_horizontal = ["allowed_users", "allowed_groups"]
    search_fields = ["name", "dataset_id", "host", "description"]
    list_select_related = ["provider"]
    actions = ["refresh_now", "clear_cache"]
    readonly_fields = ["source_check", "schedule", "cache_usage",
                       "refresh_progress", "cache_key", "version",
                       "last_refresh", "expires_at", "feature_count", "refresh_duration_ms",
                       "last_error", "last_error_at"]
    fieldsets = [
        # The page's panel (change_form.html) shows the absolute FeatureServer URL and links.
        (None, {"fields": ["provider", "host", "dataset_id", "name", "description", "enabled"]}),
        (OPTIONS_FIELDSET, {"fields": [], "classes": [OPTIONS_CLASS]}),  # see get_fieldsets
        ("Check the source", {"fields": ["source_check", "skip_check"]}),
        ("Cache", {"fields": ["ttl", "schedule"]}),
        ("Queries", {"fields": ["case_sensitive_strings"]}),
        # Open, not collapsed: after a check its selects offer the fields the source holds.
        ("Fields and metadata", {"fields": ["id_field", "display_field", "geometry_type",
                                            "fields_override", "max_record_count",
                                            "start_time_field", "end_time_field"]}),
        ("Access", {"fields": ["access", "allowed_users", "allowed_groups"],
                    "description": "Who may read this dataset, on every route of every "
                                   "output. Clients sign in with generateToken."}),
        ("Cache state", {"fields": ["refresh_progress", "cache_usage", "cache_key", "version",
                                    "last_refresh",
                                    "expires_at",
                                    "feature_count", "refresh_duration_ms", "last_error",
                                    "last_error_at"]}),
    ]

    class Media:
        js = ["koop_app/progress.js"]

    def get_urls(self) -> list[Any]:
        progress = path("progress/", self.admin_site.admin_view(self.progress_view),
                        name="koop_app_dataset_progress")
        options = path("provider-options/", self.admin_site.admin_view(self.options_view),
                       name="koop_app_dataset_provider_options")
        return [progress, options, *files.admin_urls(self.admin_site), *self.page_urls(),
                *super().get_urls()]

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

    @admin.display(description="refresh running")
    def refresh_progress(self, obj: Dataset) -> str:
        if not obj.pk:
            return "-"
        now = refresh_progress.of_datasets([obj.pk]).get(obj.pk)
        return format_html('<span class="koop-progress" data-koop-progress="{}" '
                           'data-koop-progress-url="{}">{}</span>', obj.pk,
                           reverse("admin:koop_app_dataset_progress"),
                           now["text"] if now else "none")

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

    @admin.action(description="Refresh now", permissions=["change"])
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

    @admin.action(description="Clear cache", permissions=["change"])
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

    # --- the list: four narrow columns ----------------------------------------------------
    @admin.display(description="dataset", ordering="name")
    def dataset_label(self, obj: Dataset) -> str:
        if not obj.name:
            return obj.route_label
        return format_html('{}<br><span class="koop-route">{}</span>', obj.name, obj.route_label)

    @admin.display(description="access", ordering="access")
    def access_label(self, obj: Dataset) -> str:
        label = ACCESS_LABELS.get(obj.access, obj.access)
        if obj.enabled:
            return label
        return format_html('<span class="koop-badge koop-badge-off" title="Disabled: its URLs '
                           'answer &quot;not found&quot;">off</span> {}', label)

    @admin.display(description="cache", ordering="last_refresh")
    def cache_state(self, obj: Dataset) -> str:
        """A badge (failed, cached, not cached), the count and ages, the live progress."""
        if obj.last_error:
            badge = format_html('<span class="koop-badge koop-badge-error">failed</span> '
                                '<span class="koop-error-line" title="{}">{}</span>',
                                obj.last_error, first_line(obj.last_error))
        elif obj.version:
            badge = mark_safe('<span class="koop-badge koop-badge-ok">cached</span>')
        else:
            badge = mark_safe('<span class="koop-badge">not cached</span>')
        facts = format_html_join(" · ", "<span>{}</span>", ((fact,) for fact in cache_facts(obj)))
        return format_html('{}<div class="koop-facts">{}</div>{}', badge, facts,
                           self._progress_span(obj))

    @admin.display(description="FeatureServer")
    def service_links(self, obj: Dataset) -> str:
        """The service's directory page, a copy button (the absolute URL, made in the browser
        from the page's own address) and the map preview."""
        service = obj.feature_server_path()
        if service is None:
            return "-"
        preview = preview_path(obj) if obj.enabled and obj.provider.enabled else None
        links = format_html('<a href="{}?f=html" target="_blank" rel="noopener" '
                            'title="The services directory page">open</a>', service)
        if preview is not None:
            links = format_html('{} · <a href="{}" target="_blank" rel="noopener" '
                                'title="Map preview">map</a>', links, preview)
        return format_html('{}<br><button type="button" class="koop-copy" data-copy-url="{}" '
                           'title="Copy the FeatureServer URL">copy URL</button>',
                           links, service)

    # --- the change page: a panel above the form (templates/admin/koop_app/dataset/) -------
    def page_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [path("<path:object_id>/refresh/", wrap(self.refresh_view),
                     name="koop_app_dataset_refresh"),
                path("<path:object_id>/clear-cache/", wrap(self.clear_cache_view),
                     name="koop_app_dataset_clear_cache")]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is not None:
            extra_context = {**(extra_context or {}),
                             "koop_page": self.page_context(request, obj)}
        return super().change_view(request, object_id, form_url, extra_context)

    def page_context(self, request: HttpRequest, obj: Dataset) -> dict[str, Any]:
        """What the panel of the change page shows; absolute URLs from the request, so that a
        trusted proxy's forwarded scheme, host and prefix apply (koop_app/forwarded.py)."""
        site = self.admin_site.name
        service = obj.feature_server_path()
        service_url = request.build_absolute_uri(service) if service else None
        serving = obj.enabled and obj.provider.enabled
        preview = preview_path(obj) if serving else None
        return {
            "dataset": obj,
            "serving": serving,
            "can_change": self.has_change_permission(request, obj),
            "refresh_url": reverse(f"{site}:koop_app_dataset_refresh", args=[obj.pk]),
            "clear_url": reverse(f"{site}:koop_app_dataset_clear_cache", args=[obj.pk]),
            "progress_url": reverse(f"{site}:koop_app_dataset_progress"),
            "progress": refresh_progress.of_datasets([obj.pk]).get(obj.pk),
            "facts": cache_facts(obj),
            "service_url": service_url,
            "directory_url": f"{service_url}?f=html" if service_url else None,
            "map_viewer_url": map_viewer_link(service_url) if service_url else None,
            "preview_url": preview,
            "embedded_preview_url": f"{preview}?embed=1" if preview else None,
        }

    def refresh_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST: "Refresh now" for one dataset, as the list action does it."""
        return self._act_on_one(request, object_id, self.refresh_now)

    def clear_cache_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST: "Clear cache" for one dataset."""
        return self._act_on_one(request, object_id, self.clear_cache)

    def _act_on_one(self, request: HttpRequest, object_id: str,
                    action: Callable[[HttpRequest, QuerySet[Dataset]], None]) -> HttpResponse:
        if request.method != "POST":  # a change of state: never on a GET (links, prefetch)
            return HttpResponseNotAllowed(["POST"])
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        action(request, self.get_queryset(request).filter(pk=obj.pk))
        return redirect(reverse(f"{self.admin_site.name}:koop_app_dataset_change",
                                args=[obj.pk]))


ACCESS_LABELS = {Dataset.PUBLIC: "public", Dataset.SIGNED_IN: "signed-in",
                 Dataset.RESTRICTED: "chosen users"}
ERROR_LINE_CHARS = 120


def first_line(text: str) -> str:
    """The first non-empty line of an error, cut to fit a list cell (the page has it all)."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= ERROR_LINE_CHARS else line[:ERROR_LINE_CHARS - 1] + "…"


def cache_facts(obj: Dataset) -> list[str]:
    """``1,204 features``, ``refreshed 3 minutes ago``, ``expires in 2 hours``."""
    now = timezone.now()
    facts = []
    if obj.feature_count is not None:
        facts.append(ngettext("%s feature", "%s features", obj.feature_count)
                     % f"{obj.feature_count:,}")
    if obj.last_refresh:
        facts.append("refreshed just now" if (now - obj.last_refresh).total_seconds() < 60
                     else f"refreshed {timesince(obj.last_refresh, now, depth=1)} ago")
    if obj.expires_at:
        facts.append(f"expires in {timeuntil(obj.expires_at, now, depth=1)}"
                     if obj.expires_at > now else "expired")
    return facts


def preview_path(obj: Dataset) -> str | None:
    """The map preview of the service (koop_app/outputs/pages), when that output is mounted."""
    try:
        return reverse(f"koop:{obj.provider.name}:pages-preview-service",
                       kwargs=obj.route_kwargs())
    except NoReverseMatch:
        return None
