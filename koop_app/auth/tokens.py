"""ArcGIS-style tokens: signed, expiring, bound to a client, revoked by sign-out or a new password.

A token is ``django.core.signing`` over a small dict: the user's id, the user's token generation
(``TokenGeneration``, bumped on sign-out), a piece of the session auth hash (an HMAC of the
password hash, so a new password kills it), the expiry in epoch milliseconds, the client binding
(``generateToken``'s ``client``: an IP address or a referer's origin) and whether it was issued
over HTTPS (``ssl``: then it is refused over plain HTTP). Nothing is stored per token.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from koop_app.auth.models import TokenGeneration
from koop_app.errors import InvalidTokenError

SALT = "koop_app.auth.token"
PASSWORD_PIECE = 12  # characters of the session auth hash kept in the token
MAX_TOKEN_LENGTH = 2048


@dataclass(frozen=True)
class IssuedToken:
    """What generateToken answers: ``{"token", "expires" (epoch ms), "ssl"}``."""

    token: str
    expires: int
    ssl: bool

    def as_json(self) -> dict[str, Any]:
        return {"token": self.token, "expires": self.expires, "ssl": self.ssl}


def issue_token(user: Any, minutes: int, binding: str | None, ssl: bool) -> IssuedToken:
    expires = int((time.time() + minutes * 60) * 1000)
    user_id = user.pk if isinstance(user.pk, int) else str(user.pk)  # UUID keys as text
    payload = {"u": user_id, "g": TokenGeneration.current(user.pk),
               "p": _password_piece(user), "x": expires, "b": binding, "s": ssl}
    return IssuedToken(signing.dumps(payload, salt=SALT, compress=True), expires, ssl)


def user_of_token(raw: str, request: HttpRequest) -> Any:
    """The active user ``raw`` was issued to, or InvalidTokenError (498) for any fault."""
    if len(raw) > MAX_TOKEN_LENGTH:
        raise InvalidTokenError(log_message="token too long")
    try:
        payload = signing.loads(raw, salt=SALT)
    except signing.BadSignature:
        raise InvalidTokenError(log_message="token signature does not match") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("u"), int | str):
        raise InvalidTokenError(log_message="token payload malformed")
    if not isinstance(payload.get("x"), int) or payload["x"] <= time.time() * 1000:
        raise InvalidTokenError(log_message="token expired")
    if payload.get("s") and not request.is_secure():
        raise InvalidTokenError(log_message="HTTPS token used over HTTP")
    if not binding_matches(payload.get("b"), request):
        raise InvalidTokenError(log_message="token used by another client")
    try:
        user = get_user_model().objects.filter(pk=payload["u"]).first()
    except (ValueError, ValidationError):
        raise InvalidTokenError(log_message="token user id malformed") from None
    if user is None or not user.is_active:
        raise InvalidTokenError(log_message="token user gone or disabled")
    if payload.get("p") != _password_piece(user):
        raise InvalidTokenError(log_message="password changed since the token was issued")
    if payload.get("g") != TokenGeneration.current(user.pk):
        raise InvalidTokenError(log_message="token revoked by a sign-out")
    return user


def _password_piece(user: Any) -> str:
    return user.get_session_auth_hash()[:PASSWORD_PIECE]


# Client binding (generateToken's ``client``): "ip:<address>" or "referer:<origin or host>".

def ip_binding(address: str) -> str:
    return f"ip:{ipaddress.ip_address(address.strip())}"


def referer_binding(referer: str) -> str:
    return f"referer:{origin_of(referer)}"


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, or the host part when it has no scheme; lowercased."""
    url = url.strip().lower()
    if "://" in url:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"
    return url.split("/", 1)[0]


def binding_matches(binding: str | None, request: HttpRequest) -> bool:
    if not binding:
        return True
    kind, _, value = binding.partition(":")
    if kind == "ip":
        return request.META.get("REMOTE_ADDR", "") == value
    if kind == "referer":
        # Browsers often send only the origin across origins (strict-origin-when-cross-origin),
        # so the page's origin is what a referer-bound token is checked against.
        sent = request.META.get("HTTP_REFERER") or request.META.get("HTTP_ORIGIN") or ""
        if not sent:
            return False
        if "://" in value:
            return origin_of(sent) == value
        return urlsplit(origin_of(sent) if "://" in sent else f"//{sent}").netloc == value
    return False
