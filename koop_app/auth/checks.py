"""System checks of the token settings (ids koop_app.E1xx/W1xx belong to koop_app/auth)."""

from __future__ import annotations

from typing import Any

from django.core import checks

from koop_app.conf import koop_settings


@checks.register()
def check_token_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    minutes = {key: getattr(koop_settings, key)
               for key in ("TOKEN_DEFAULT_MINUTES", "TOKEN_MAX_MINUTES")}
    for key, value in minutes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            messages.append(checks.Error(
                f"KOOP[{key!r}] must be a whole number of minutes, at least 1; got {value!r}.",
                hint="Tokens live this many minutes; see README 'Security: tokens and access'.",
                id="koop_app.E101"))
    if not messages and minutes["TOKEN_DEFAULT_MINUTES"] > minutes["TOKEN_MAX_MINUTES"]:
        messages.append(checks.Warning(
            "KOOP['TOKEN_DEFAULT_MINUTES'] is above KOOP['TOKEN_MAX_MINUTES']; tokens get the "
            "maximum.", hint="Lower the default or raise the maximum.", id="koop_app.W101"))
    return messages
