"""Named connections to the servers providers read: a database, a search cluster, a GIS server.

Providers whose ``:host`` names a server (``hosts = True``) look the server up here, by the
provider's name and the route's host, instead of storing URLs and credentials per dataset::

    KOOP["CONNECTIONS"] = {
        "postgis": {"gis": {"dsn": "postgresql://reader@db.internal/gis", "password": "..."}},
        "elasticsearch": {"logs": {"url": "https://es.internal:9200", "api_key": "..."}},
    }
    settings = connection("elasticsearch", "logs")   # a read-only mapping
    redacted(settings)                                # for the admin and logs: secrets masked

The operator configures them (``KOOP_CONNECTIONS`` in the environment holds the same JSON for
the bundled site), so an administrator picks a connection by name in the admin and never sees
or types its secrets. Keys whose name says secret (password, token, api_key, secret, key,
credentials) are masked wherever a connection is shown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from koop_app.conf import koop_settings
from koop_app.errors import NotFoundError

SECRET_KEY_PATTERN = re.compile(r"pass|secret|token|api_?key|credential|private|^key$|_key$",
                                re.IGNORECASE)
MASK = "••••••"


class UnknownConnectionError(NotFoundError):
    """A route's host names no configured connection (a 404: no such service)."""

    default_message = "No such server is configured."


def connections(provider: str) -> dict[str, Mapping[str, Any]]:
    """The connections configured for ``provider``, by name."""
    configured = (koop_settings.CONNECTIONS or {}).get(provider) or {}
    return {str(name): MappingProxyType(dict(values)) for name, values in configured.items()
            if isinstance(values, Mapping)}


def connection(provider: str, name: str | None) -> Mapping[str, Any]:
    """The connection ``name`` of ``provider``; UnknownConnectionError when there is none."""
    found = connections(provider).get(name or "")
    if found is None:
        raise UnknownConnectionError(
            f"No {provider} server named {name!r} is configured.",
            log_message=f"KOOP['CONNECTIONS'][{provider!r}] has no {name!r}")
    return found


def is_secret(key: str) -> bool:
    return bool(SECRET_KEY_PATTERN.search(key))


def redacted(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with every secret masked (also inside URLs' user:password@ parts)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if is_secret(str(key)) and value not in (None, ""):
            out[key] = MASK
        elif isinstance(value, Mapping):
            out[key] = redacted(value)
        elif isinstance(value, str):
            out[key] = redact_url(value)
        else:
            out[key] = value
    return out


_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<pw>[^@/\s]*)@",
                       re.IGNORECASE)
_QUERY_SECRET = re.compile(r"(?P<name>[?&](?:password|token|api_?key|secret|sig|signature|"
                           r"x-amz-signature|x-amz-credential|key)=)[^&#\s]*", re.IGNORECASE)


def redact_url(text: str) -> str:
    """``text`` with passwords in URLs (``user:pw@``) and secret query values masked."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m['name']}{MASK}", text)
