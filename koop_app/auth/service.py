"""The token service: ``authInfo`` for ``rest/info`` and ``generateToken``, ArcGIS Server style.

ArcGIS clients find the token service from ``<server root>/rest/info``, the server root being
the URL part before ``/rest/services``. Our layers live at ``/<provider>/rest/services/...``,
so every provider namespace has ``rest/info`` and ``rest/generateToken`` too. A provider that
declares its own authentication (Koop's authorization plugins) answers its namespace's
``generateToken`` with its ``authenticate`` hook; everywhere else Django users sign in.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth import authenticate
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.urls import reverse

from koop_app.auth.access import provider_authenticates
from koop_app.auth.tokens import ip_binding, issue_token, referer_binding
from koop_app.conf import koop_settings
from koop_app.errors import (
    NotFoundError,
    ProviderError,
    SignInThrottledError,
    TokenGenerationError,
)
from koop_app.provider import Provider, ProviderRequest

BAD_CREDENTIALS = "Invalid username or password."
MINUTES = re.compile(r"^[0-9]{1,9}$")
MAX_CREDENTIAL_LENGTH = 1024


def auth_info(request: HttpRequest, plugin: Provider | None = None) -> dict[str, Any]:
    """``authInfo`` of ``/rest/info`` (``plugin`` None) or ``/<provider>/rest/info``."""
    if plugin is not None and provider_authenticates(plugin):
        spec = plugin.get_authentication_specification() or {}
        url = request.build_absolute_uri(_token_path(plugin.name))
        # Koop's useHttp: the token service URL is https unless the provider allows http.
        if not spec.get("useHttp") and url.startswith("http://"):
            url = "https://" + url[len("http://"):]
        info: dict[str, Any] = {"isTokenBasedSecurity": True, "tokenServicesUrl": url}
        if "shortLivedTokenValidity" in spec:
            info["shortLivedTokenValidity"] = spec["shortLivedTokenValidity"]
        return info
    if not koop_settings.TOKEN_SECURITY:
        return {"isTokenBasedSecurity": False}
    return {"isTokenBasedSecurity": True,
            "tokenServicesUrl": request.build_absolute_uri(
                _token_path(plugin.name if plugin else None)),
            "shortLivedTokenValidity": int(koop_settings.TOKEN_DEFAULT_MINUTES)}


def _token_path(provider: str | None) -> str:
    if provider is None:
        return reverse("koop:geoservices-generate-token")
    return reverse(f"koop:{provider}:geoservices-provider-generate-token")


def generate_token(request: HttpRequest, params: dict[str, str],
                   plugin: Provider | None = None) -> dict[str, Any]:
    """Answer ``generateToken``: ``{"token", "expires" (epoch ms), "ssl"}`` or raise 400.

    ``params`` are the credentials and options: the form body of a POST (credentials in a
    query string would end up in access logs), or the query string when GET is enabled.
    """
    if plugin is not None and provider_authenticates(plugin):
        return _provider_token(request, params, plugin)
    if not koop_settings.TOKEN_SECURITY:
        raise NotFoundError("Token service not enabled.")
    if koop_settings.TOKEN_HTTPS_ONLY and not request.is_secure():
        raise TokenGenerationError(details=["Tokens are only issued over HTTPS."])
    username, password = params.get("username") or "", params.get("password") or ""
    if not username or not password:
        raise TokenGenerationError(details=["Username and password are required."])
    if len(username) > MAX_CREDENTIAL_LENGTH or len(password) > MAX_CREDENTIAL_LENGTH:
        raise TokenGenerationError(details=[BAD_CREDENTIALS])
    minutes = _expiration(params.get("expiration") or "")
    binding = _binding(request, params)
    # authenticate() refuses inactive users and runs the hasher for unknown names too, so
    # neither the answer nor its timing tells which credential was wrong.
    try:
        user = authenticate(request, username=username, password=password)
    except PermissionDenied:  # the login throttle (django-axes) locked this name + address
        raise SignInThrottledError(log_message=f"generateToken throttled for {username!r}") \
            from None
    if user is None:
        raise TokenGenerationError(details=[BAD_CREDENTIALS],
                                   log_message=f"generateToken refused for {username!r}")
    return issue_token(user, minutes, binding, request.is_secure()).as_json()


def _expiration(value: str) -> int:
    value = value.strip()
    if not value:
        wanted = int(koop_settings.TOKEN_DEFAULT_MINUTES)
    elif MINUTES.match(value) and int(value) >= 1:
        wanted = int(value)
    else:
        raise TokenGenerationError(details=["'expiration' must be a whole number of minutes."])
    return min(wanted, int(koop_settings.TOKEN_MAX_MINUTES))


def _binding(request: HttpRequest, params: dict[str, str]) -> str | None:
    """The client the token is bound to: ``client=referer|ip|requestip`` (none when absent)."""
    client = (params.get("client") or "").strip().lower()
    if not client:
        return None
    if client == "requestip":
        return f"ip:{request.META.get('REMOTE_ADDR', '')}"
    if client == "ip":
        try:
            return ip_binding(params.get("ip") or "")
        except ValueError:
            raise TokenGenerationError(
                details=["'ip' must be an IP address when client is 'ip'."]) from None
    if client == "referer":
        referer = (params.get("referer") or "").strip()
        if not referer or len(referer) > MAX_CREDENTIAL_LENGTH:
            raise TokenGenerationError(
                details=["'referer' must be given when client is 'referer'."])
        return referer_binding(referer)
    raise TokenGenerationError(details=["'client' must be referer, ip or requestip."])


def _provider_token(request: HttpRequest, params: dict[str, str],
                    plugin: Provider) -> dict[str, Any]:
    provider_request = ProviderRequest(params={}, query=dict(params), http_request=request)
    try:
        answer = plugin.authenticate(provider_request)
    except ProviderError as exc:
        if exc.status in (400, 401, 403):
            raise TokenGenerationError(details=[BAD_CREDENTIALS],
                                       log_message=exc.log_message) from exc
        raise
    answer = dict(answer)
    answer.setdefault("ssl", request.is_secure())
    return answer
