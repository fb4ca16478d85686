"""Declarative provider options: what the admin asks for and how each value is checked.

A provider lists its options; ``validate_options`` turns raw values (JSON from the admin, or
``key=value`` strings from the command line) into typed ones, fills defaults and rejects unknown
keys, collecting one message per option so the admin can show them all at once.

    options_schema = (
        Option("source", str, required=True, help="URL or file under KOOP['DATA_DIR']"),
        Option("delimiter", str, default=None, help="Column separator; sniffed when empty"),
    )
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from koop_app.errors import OptionsError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Option:
    """One option of a provider: name, type (str, int, float, bool, list), default, checks."""

    name: str
    type: type = str
    required: bool = False
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] = ()
    # Shown in the admin form instead of the name, e.g. "Latitude column".
    label: str = ""
    # What the value names, for the admin's widget: "location" (a file in the data folder or
    # an http(s) URL: the form offers the data folder's browser and an upload), "secret"
    # (never shown back), or "" (a plain value of ``type``).
    kind: str = ""
    # Extra check on the typed value: return it (possibly changed) or raise ValueError.
    check: Callable[[Any], Any] | None = None

    def clean(self, value: Any) -> Any:
        value = _coerce(self.type, value)
        if self.choices and value not in self.choices:
            raise ValueError(f"must be one of {', '.join(map(str, self.choices))}")
        if self.check is not None:
            value = self.check(value)
        return value


def _coerce(kind: type, value: Any) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError("must be true or false")
    if kind in (int, float):
        if isinstance(value, bool):
            raise ValueError(f"must be a{'n integer' if kind is int else ' number'}")
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"must be a{'n integer' if kind is int else ' number'}, got {value!r}"
            ) from None
    if kind is list:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, (list, tuple)):
            return list(value)
        raise ValueError("must be a list")
    if kind is str:
        if isinstance(value, (dict, list)):
            raise ValueError("must be text")
        return str(value)
    return value


def readable(name: str) -> str:
    """"page_size" -> "Page size": a label for a name that comes with none."""
    return name.replace("_", " ").replace("-", " ").strip().capitalize()


def given_options(raw: Mapping[str, Any] | None, cleaned: Mapping[str, Any]) -> dict[str, Any]:
    """What to store of ``cleaned`` options: the typed values of the keys ``raw`` sets.

    Unset options (absent, None or "") are left out; ``validate_options`` fills their defaults
    each time the options are used, so a changed default applies to every dataset.
    """
    return {key: cleaned[key] for key, value in (raw or {}).items()
            if value is not None and value != "" and key in cleaned}


def validate_options(
    schema: Iterable[Option], raw: Mapping[str, Any] | None, *, provider: str = ""
) -> dict[str, Any]:
    """Return typed options with defaults; raise OptionsError naming every bad key."""
    raw = dict(raw or {})
    by_name = {option.name: option for option in schema}
    errors: dict[str, str] = {}
    for key in raw:
        if key not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            errors[key] = f"unknown option for {provider or 'this provider'} (known: {known})"
    cleaned: dict[str, Any] = {}
    for name, option in by_name.items():
        value = raw.get(name)
        if value is None or value == "":
            if option.required:
                errors[name] = "this option is required"
            cleaned[name] = option.default
            continue
        try:
            cleaned[name] = option.clean(value)
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise OptionsError(errors, provider)
    return cleaned
