"""Create the admin user (KOOP_ADMIN_USER / KOOP_ADMIN_PASSWORD, or a generated password)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the admin user if missing and print its credentials."

    def handle(self, *args: Any, **options: Any) -> None:
        username = os.environ.get("KOOP_ADMIN_USER", "admin")
        password = os.environ.get("KOOP_ADMIN_PASSWORD", "")
        if not password and getattr(settings, "VAR_DIR", None) is None:
            raise CommandError("Set KOOP_ADMIN_PASSWORD, or use createsuperuser: this project "
                               "has no settings.VAR_DIR to keep a generated password in.")
        if not password:
            stored = Path(settings.VAR_DIR) / "admin_password"
            if stored.exists():
                password = stored.read_text().strip()
            else:
                password = secrets.token_urlsafe(12)
                stored.write_text(password)
                stored.chmod(0o600)
        users = get_user_model()
        user = users.objects.filter(username=username).first()
        if user is None:
            users.objects.create_superuser(username=username, email="", password=password)
        elif os.environ.get("KOOP_ADMIN_PASSWORD"):
            user.set_password(password)
            user.save(update_fields=["password"])
        self.stdout.write(f"Admin (at /admin/): user {username!r}  password {password!r}")
