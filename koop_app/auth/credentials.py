"""Who is asking: a token from the request, a staff admin session, or nobody.

Tokens are read, in this order, from ``X-Esri-Authorization: Bearer``, ``Authorization:
Bearer`` and the ``token`` parameter (form body first, then the query string), as ArcGIS
clients send them. A request that carries a token is judged by the token alone.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError
from django.middleware.csrf import CsrfViewMiddleware

from koop_app.auth.tokens import user_of_token
from koop_app.conf import koop_settings

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def token_of(request: HttpRequest) -> str | None:
    for header in ("HTTP_X_ESRI_AUTHORIZATION", "HTTP_AUTHORIZATION"):
        scheme, _, value = (request.META.get(header) or "").strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    if request.method == "POST":
        try:
            value = request.POST.get("token")
        except (SuspiciousOperation, MultiPartParserError, ValueError):
            # an unreadable body is the view's error to report, not ours
            value = None
        if value:
            return value.strip()
    value = request.GET.get("token")
    return value.strip() if value and value.strip() else None


def user_of(request: HttpRequest) -> Any | None:
    """The user the request speaks for (token, else staff session), or None for anonymous.

    Raises InvalidTokenError (498) when a token is given but cannot be used.
    """
    raw = token_of(request)
    if raw is not None:
        return user_of_token(raw, request)
    return session_user(request)


def session_user(request: HttpRequest) -> Any | None:
    """An active staff user signed in to the admin, when KOOP["SESSION_ACCESS"] allows it.

    Unsafe methods also need the CSRF token, so another site cannot post with the cookie.
    """
    if not koop_settings.SESSION_ACCESS:
        return None
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_active or not user.is_staff:
        return None
    if request.method not in SAFE_METHODS and _csrf_fails(request):
        return None
    return user


class _CsrfCheck(CsrfViewMiddleware):
    """Django's CSRF check that reports a failure instead of logging "Forbidden"."""

    def _reject(self, request: HttpRequest, reason: str) -> Any:
        return reason


def _csrf_fails(request: HttpRequest) -> bool:
    check = _CsrfCheck(lambda req: None)  # type: ignore[arg-type, return-value]
    check.process_request(request)
    return check.process_view(request, lambda: None, (), {}) is not None
