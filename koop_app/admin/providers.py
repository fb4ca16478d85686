"""The admin of providers: rows from the registry, each with its options."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from koop_app.errors import NotFoundError
from koop_app.models import Provider


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = ["name", "enabled", "cache_policy", "default_ttl", "hosts",
                    "disable_id_param", "dataset_count"]
    list_editable = ["enabled"]
    readonly_fields = ["name", "hosts", "disable_id_param", "options_reference"]
    fields = ["name", "enabled", "cache_policy", "default_ttl", "hosts", "disable_id_param",
              "options_reference"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # rows come from the registry

    def get_queryset(self, request: HttpRequest) -> QuerySet[Provider]:
        return super().get_queryset(request).annotate(_datasets=Count("datasets"))

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        Provider.sync_from_registry()
        return super().changelist_view(request, extra_context)

    @admin.display(description="datasets", ordering="_datasets")
    def dataset_count(self, obj: Provider) -> int:
        return obj._datasets

    @admin.display(description="options")
    def options_reference(self, obj: Provider) -> str:
        return options_table(obj)


def options_table(provider: Provider) -> str:
    try:
        schema = provider.plugin.options_schema
    except NotFoundError:
        return "This provider plugin is not registered."
    if not schema:
        return "No options."
    rows = format_html_join(
        "", "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
        ((o.name, o.type.__name__, "required" if o.required else "", o.help) for o in schema),
    )
    return format_html("<table><tr><th>option</th><th>type</th><th></th><th>meaning</th></tr>"
                       "{}</table>", rows)
