"""DRF adapters: the caller from a token or a staff session, and the per-dataset permission."""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from koop_app.auth.access import check_access, provider_authenticates
from koop_app.auth.credentials import user_of
from koop_app.errors import NotFoundError
from koop_app.registry import registry


class KoopAuthentication(BaseAuthentication):
    """``request.user``: the token's user, a staff admin session's user, or None.

    Routes of a provider with its own authentication leave the token to its ``authorize``.
    """

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        provider = (request.parser_context or {}).get("kwargs", {}).get("provider")
        if provider and _own_authentication(provider):
            return None
        user = user_of(request._request)
        return (user, None) if user is not None else None

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"


def _own_authentication(provider: str) -> bool:
    try:
        return provider_authenticates(registry.get(provider))
    except NotFoundError:
        return False


def request_user(request: Request) -> Any | None:
    """The request's user, None when anonymous (whatever the project's REST_FRAMEWORK setting
    UNAUTHENTICATED_USER makes of it: None here, AnonymousUser by default)."""
    user = request.user
    return user if user is not None and user.is_authenticated else None


class DatasetAccess(BasePermission):
    """Refuse (499/498/403) before the view runs, so a refused request never fetches data.

    The view provides ``get_dataset()`` (404 when there is none) and ``get_provider_request()``
    (what the provider's ``authorize`` hook is given).
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method == "OPTIONS":
            return True  # a CORS preflight carries no credentials and gets no data
        dataset = view.get_dataset()
        check_access(request._request, dataset, view.get_provider_request(dataset),
                     user=request_user(request))
        return True
