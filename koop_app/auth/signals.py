"""Signing out of the site revokes the user's tokens too."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from koop_app.auth.models import TokenGeneration


@receiver(user_logged_out, dispatch_uid="koop_revoke_tokens_on_logout")
def revoke_tokens(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    if user is not None and user.pk is not None:
        TokenGeneration.bump(user.pk)
