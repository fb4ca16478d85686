"""Finds provider plugins: dotted paths in ``KOOP["PROVIDERS"]`` plus the entry-point group.

    from koop_app.registry import registry
    registry.get("geojson")          # the GeoJSONProvider instance
    registry.names()                 # ["csv", "geojson"]

Plugins are imported on first use and kept; ``registry.reset()`` (wired to ``setting_changed``)
forgets them. A plugin that fails to import or breaks the contract is left out and reported by
the system check ``koop_app.E001``/``E002`` instead of breaking every request.
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import dataclass
from importlib.metadata import entry_points

from django.utils.module_loading import import_string

from koop_app.conf import koop_settings
from koop_app.errors import NotFoundError
from koop_app.provider import Provider, contract_problems


@dataclass(frozen=True)
class RegistryProblem:
    """A plugin that could not be registered, and why."""

    source: str  # the setting entry or entry point that named it
    message: str
    import_failed: bool


def _same_plugin(first: type, second: type) -> bool:
    """One class, possibly imported under two module names (``providers.x`` from a checkout and
    ``koop_app.providers.x`` from the installed package)."""
    if first is second:
        return True
    try:
        return (first.__qualname__ == second.__qualname__
                and inspect.getsourcefile(first) == inspect.getsourcefile(second))
    except TypeError:  # built-in or dynamically made classes have no source file
        return False


class ProviderRegistry:
    """Name -> Provider instance, resolved lazily and cached."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._providers: dict[str, Provider] | None = None
        self._problems: list[RegistryProblem] = []

    def reset(self) -> None:
        with self._lock:
            self._providers = None
            self._problems = []

    def _load(self) -> dict[str, Provider]:
        with self._lock:
            if self._providers is not None:
                return self._providers
            providers: dict[str, Provider] = {}
            problems: list[RegistryProblem] = []
            for source, loader in self._candidates():
                try:
                    provider_class = loader()
                except Exception as exc:  # any import-time failure is the plugin's, not ours
                    problems.append(RegistryProblem(source, f"cannot be imported: {exc}", True))
                    continue
                broken = contract_problems(provider_class)
                if broken:
                    problems.append(RegistryProblem(source, "; ".join(broken), False))
                    continue
                if provider_class.name in providers:
                    if _same_plugin(type(providers[provider_class.name]), provider_class):
                        continue  # listed in KOOP["PROVIDERS"] and installed as an entry point
                    problems.append(
                        RegistryProblem(
                            source, f"name {provider_class.name!r} is already registered", False
                        )
                    )
                    continue
                providers[provider_class.name] = provider_class()
            self._providers, self._problems = providers, problems
            return providers

    @staticmethod
    def _candidates():
        for path in koop_settings.PROVIDERS:
            yield f"KOOP['PROVIDERS'] entry {path!r}", (lambda p=path: import_string(p))
        for point in entry_points(group=koop_settings.ENTRY_POINT_GROUP):
            yield f"entry point {point.name!r} ({point.value})", point.load

    def get(self, name: str) -> Provider:
        try:
            return self._load()[name]
        except KeyError:
            raise NotFoundError(f"Provider {name!r} is not registered.") from None

    def names(self) -> list[str]:
        return sorted(self._load())

    def all(self) -> list[Provider]:
        providers = self._load()
        return [providers[name] for name in sorted(providers)]

    def problems(self) -> list[RegistryProblem]:
        self._load()
        return list(self._problems)


registry = ProviderRegistry()
