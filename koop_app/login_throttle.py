"""Login throttling: django-axes' check before the password check, for every sign-in."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class LoginThrottleBackend(AxesStandaloneBackend):
    """Refuses a locked-out (username, address) pair; sign-ins without a request pass through.

    Every sign-in over HTTP (the admin's form, ``generateToken``) must call
    ``authenticate(request, ...)`` so that its failures count. ``authenticate()`` without a
    request (a management command, the test client's ``login()``) has no client address to
    throttle and is left to the next backend.
    """

    def authenticate(self, request: HttpRequest | None, username: str | None = None,
                     password: str | None = None, **kwargs: Any) -> None:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
