"""List the registered providers, their route shape, cache policy and options."""

from __future__ import annotations

import shutil
import textwrap
from typing import Any

import orjson
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from koop_app.conf import koop_settings
from koop_app.management.help import explain
from koop_app.models import Provider as ProviderRow
from koop_app.options import Option
from koop_app.provider import Provider
from koop_app.registry import registry

# Option types as an administrator (and a JSON reader) names them.
TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "list"}


def option_facts(option: Option) -> dict[str, Any]:
    """One option of a provider's ``options_schema`` as plain data."""
    return {
        "name": option.name,
        "label": option.label,
        "type": TYPE_NAMES.get(option.type, getattr(option.type, "__name__", str(option.type))),
        "kind": option.kind,
        "required": option.required,
        "default": option.default,
        "choices": list(option.choices),
        "help": option.help,
    }


def service_path(plugin: Provider) -> str:
    """The provider's FeatureServer URL with its route parameters as placeholders."""
    params = (["<host>"] if plugin.hosts else []) + ([] if plugin.disable_id_param else ["<id>"])
    return "/".join(["", plugin.name, "rest", "services", *params, "FeatureServer"])


def provider_facts(plugin: Provider, row: ProviderRow | None) -> dict[str, Any]:
    """What the plugin declares, with this site's settings for it (its Provider row) on top.

    A plugin without a row yet (none is made until a dataset or the admin needs one) shows
    its declared cache policy and the site's default TTL.
    """
    cls = type(plugin)
    declared = plugin.cache_policy
    return {
        "name": plugin.name,
        "title": getattr(cls, "title", "") or "",
        "description": getattr(cls, "description", "") or "",
        "version": plugin.version,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "enabled": row.enabled if row else True,
        "cache_policy": row.cache_policy if row else declared,
        "declared_cache_policy": declared,
        "default_ttl": (row.default_ttl if row and row.default_ttl else None),
        "site_default_ttl": koop_settings.DEFAULT_TTL,
        "takes_host": bool(plugin.hosts),
        "takes_id": not plugin.disable_id_param,
        "service_url": service_path(plugin),
        "extra_routes": [{"path": f"/{plugin.name}/{route.path}", "methods": list(route.methods)}
                         for route in plugin.routes],
        "options": [option_facts(option) for option in plugin.options_schema],
    }


class Command(BaseCommand):
    help = (
        "List the registered providers: what each serves, its URL shape, cache policy, version\n"
        "and the options a dataset of it takes (name, type, required, default, choices, help).\n"
        "\n"
        "Providers come from KOOP['PROVIDERS'] and the 'koop.providers' entry points; one that\n"
        "fails to load is reported at the end (and by `manage.py check`). The cache policy and\n"
        "TTL are this site's (admin: Providers) when set there, else the plugin's. Pass the\n"
        "options to `koop_dataset PROVIDER ID --option NAME=VALUE` or the admin's dataset form."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        explain(parser, """
            manage.py koop_providers
            manage.py koop_providers csv
            manage.py koop_providers --json | jq '.providers[].name'
        """)
        parser.add_argument("name", nargs="?",
                            help="show this provider only, e.g. geojson (default: all)")
        parser.add_argument("--json", action="store_true",
                            help="write JSON for scripts instead of text: one provider object, "
                                 'or {"providers": [...], "problems": [...]}')

    def handle(self, *args: Any, **opts: Any) -> None:
        plugins = registry.all()
        if opts["name"]:
            plugins = [plugin for plugin in plugins if plugin.name == opts["name"]]
            if not plugins:
                known = ", ".join(registry.names()) or "none"
                raise CommandError(f"Provider {opts['name']!r} is not registered "
                                   f"(registered: {known}).")
        facts = [provider_facts(plugin, row) for plugin, row in self._with_rows(plugins)]
        problems = [{"source": p.source, "message": p.message} for p in registry.problems()]
        if opts["json"]:
            document: Any = facts[0] if opts["name"] else {
                "providers": facts, "problems": problems,
                "data_dir": str(koop_settings.DATA_DIR)}
            self.stdout.write(orjson.dumps(document, default=str,
                                           option=orjson.OPT_INDENT_2).decode())
            return
        width = min(shutil.get_terminal_size((100, 24)).columns, 100)
        self.stdout.write("\n\n".join(self._text(entry, width) for entry in facts)
                          or "No providers are registered (KOOP['PROVIDERS']).")
        if problems and not opts["name"]:
            self.stderr.write("\nNot registered (see `manage.py check`):")
            for problem in problems:
                self.stderr.write(f"  {problem['source']}: {problem['message']}")

    def _with_rows(self, plugins: list[Provider]) -> list[tuple[Provider, ProviderRow | None]]:
        try:
            rows = {row.name: row for row in ProviderRow.objects.filter(
                name__in=[plugin.name for plugin in plugins])}
        except DatabaseError as exc:  # not migrated yet: the plugins' own facts still help
            self.stderr.write(f"(This site's provider settings are not readable: {exc}; "
                              "showing the plugins' defaults.)")
            rows = {}
        return [(plugin, rows.get(plugin.name)) for plugin in plugins]

    def _text(self, entry: dict[str, Any], width: int) -> str:
        head = entry["name"] + (f"  {entry['title']}" if entry["title"] else "")
        lines = [self.style.MIGRATE_HEADING(head)]
        if entry["description"]:
            lines += textwrap.wrap(entry["description"], width, initial_indent="  ",
                                   subsequent_indent="  ")
        lines.append("")

        def fact(label: str, value: str) -> None:
            lines.extend(textwrap.wrap(value, width, initial_indent=f"  {label:<10}",
                                       subsequent_indent=" " * 12) or [f"  {label}"])

        fact("version", f"{entry['version']} ({entry['class']})")
        fact("enabled", "yes" if entry["enabled"] else "no: its datasets are not served")
        if entry["cache_policy"] == "cached":
            ttl = (f"{entry['default_ttl']} s (this site's setting)" if entry["default_ttl"]
                   else f"{entry['site_default_ttl']} s (KOOP['DEFAULT_TTL'])")
            fact("cache", f"cached: a copy is kept and refreshed before its TTL ends; "
                          f"default TTL {ttl}")
        else:
            fact("cache", "pass-through: the source is asked on every request")
        if entry["cache_policy"] != entry["declared_cache_policy"]:
            lines[-1] += f" (the plugin declares {entry['declared_cache_policy']})"
        host = "takes :host" if entry["takes_host"] else "no :host"
        ident = "takes :id" if entry["takes_id"] else "no :id"
        fact("url", f"{entry['service_url']}  ({host}, {ident})")
        for route in entry["extra_routes"]:
            fact("extra", f"{route['path']}  ({', '.join(route['methods'])})")
        lines.append("")
        options = entry["options"]
        if not options:
            lines.append("  options   none")
            return "\n".join(lines)
        lines.append(f"  options ({len(options)}; set as NAME=VALUE)")
        column = min(max(len(option["name"]) for option in options) + 2, 24)
        for option in options:
            lines.append(f"    {option['name']:<{column}}{self._summary(option)}")
            text = ". ".join(part.rstrip(".") for part in (option["label"], option["help"])
                             if part) + "."
            lines += textwrap.wrap(text, width, initial_indent=" " * (4 + column),
                                   subsequent_indent=" " * (4 + column))
        if any(option["kind"] == "location" for option in options):
            lines.append(f"  data folder (KOOP['DATA_DIR']): {koop_settings.DATA_DIR}")
        return "\n".join(lines)

    @staticmethod
    def _summary(option: dict[str, Any]) -> str:
        """``integer, default 500`` / ``string, required, one of: a, b``."""
        parts = [option["type"]]
        if option["kind"] == "location":
            parts[0] += " (a path in the data folder, or an http(s) URL)"
        elif option["kind"] == "secret":
            parts[0] += " (secret)"
        if option["required"]:
            parts.append("required")
        elif option["default"] not in (None, "", [], ()):
            default = option["default"]
            shown = orjson.dumps(default, default=str).decode() if not isinstance(
                default, str) else default
            parts.append(f"default {shown}")
        if option["choices"]:
            parts.append("one of: " + ", ".join(map(str, option["choices"])))
        return ", ".join(parts)
