"""Per-user token state: a generation number that signing out moves on, killing old tokens."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F


class TokenGeneration(models.Model):
    """Tokens carry the generation they were issued in; a bump revokes every older one."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                primary_key=True, related_name="koop_token_generation")
    generation = models.PositiveIntegerField(default=0)

    class Meta:
        app_label = "koop_app"

    def __str__(self) -> str:
        return f"token generation {self.generation} of {self.user}"

    @classmethod
    def current(cls, user_id: int) -> int:
        row = cls.objects.filter(user_id=user_id).values_list("generation", flat=True).first()
        return row or 0

    @classmethod
    def bump(cls, user_id: int) -> None:
        """Revoke every token of the user issued so far."""
        cls.objects.get_or_create(user_id=user_id)
        cls.objects.filter(user_id=user_id).update(generation=F("generation") + 1)
