"""Create the admin user (KOOP_ADMIN_USER / KOOP_ADMIN_PASSWORD, or a generated password)."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from koop_app.management.help import explain


class Command(BaseCommand):
    help = (
        "Create the admin user if missing and print its user name and password.\n"
        "\n"
        "The user is KOOP_ADMIN_USER (default: admin). Its password is KOOP_ADMIN_PASSWORD;\n"
        "when that is set, an existing user gets it too. Without it, a password is generated\n"
        "once, kept in <KOOP_VAR_DIR>/admin_password (mode 600) and printed on every run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        explain(parser, """
            manage.py koop_admin_user
            KOOP_ADMIN_USER=gis KOOP_ADMIN_PASSWORD='a long passphrase' manage.py koop_admin_user
        """)

    def handle(self, *args: Any, **options: Any) -> None:
        username = os.environ.get("KOOP_ADMIN_USER", "admin")
        password = os.environ.get("KOOP_ADMIN_PASSWORD", "")
        stored = settings.VAR_DIR / "admin_password"
        if not password:
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
