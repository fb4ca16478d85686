"""Create the admin user (KOOP_ADMIN_USER / KOOP_ADMIN_PASSWORD, or a generated password).

Django's ``DJANGO_SUPERUSER_USERNAME`` / ``_PASSWORD`` / ``_EMAIL`` are read when the KOOP_
ones are unset. ``--from-env`` (containers, scripts/start-web) acts only on a password from
the environment and never generates, stores or prints one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from koop_app.management.help import explain


def _env(*names: str) -> str:
    return next((os.environ[name] for name in names if os.environ.get(name)), "")


class Command(BaseCommand):
    help = (
        "Create the admin user if missing and print its user name and password.\n"
        "\n"
        "The user is KOOP_ADMIN_USER (default: admin). Its password is KOOP_ADMIN_PASSWORD;\n"
        "when that is set, an existing user gets it too. Without it, a password is generated\n"
        "once, kept in <KOOP_VAR_DIR>/admin_password (mode 600) and printed on every run.\n"
        "Django's DJANGO_SUPERUSER_USERNAME / _PASSWORD / _EMAIL are read when those are unset."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        explain(parser, """
            manage.py koop_admin_user
            KOOP_ADMIN_USER=gis KOOP_ADMIN_PASSWORD='a long passphrase' manage.py koop_admin_user
            manage.py koop_admin_user --from-env     # containers: only a password from the env
        """)
        parser.add_argument(
            "--from-env", action="store_true",
            help="only with a password from KOOP_ADMIN_PASSWORD (or DJANGO_SUPERUSER_PASSWORD): "
                 "create the user or set its password; without one do nothing; never print it")

    def handle(self, *args: Any, **options: Any) -> None:
        username = _env("KOOP_ADMIN_USER", "DJANGO_SUPERUSER_USERNAME") or "admin"
        given = _env("KOOP_ADMIN_PASSWORD", "DJANGO_SUPERUSER_PASSWORD")
        if options["from_env"] and not given:
            self.stdout.write("No KOOP_ADMIN_PASSWORD (or DJANGO_SUPERUSER_PASSWORD) set: "
                              "no admin user created or changed.")
            return
        password = given
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
            users.objects.create_superuser(username=username, password=password,
                                           email=_env("DJANGO_SUPERUSER_EMAIL"))
        elif given:
            user.set_password(password)
            user.save(update_fields=["password"])
        # A password the operator gave is not echoed into logs (container logs are kept).
        shown = "from the environment" if given else repr(password)
        self.stdout.write(f"Admin (at /admin/): user {username!r}  password {shown}")
