"""ASGI entry point."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "koopsite.settings")
django_application = get_asgi_application()

from koop_app.outputs.geoservices.asgi import RestBodyLimit  # noqa: E402  (after Django setup)

# Bodies of /rest/ routes are limited while they stream in, before Django spools them.
application = RestBodyLimit(django_application)
