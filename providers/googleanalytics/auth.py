"""Service-account sign-in to Google: a signed JWT exchanged for an access token, kept until
shortly before it expires.

Google's OAuth 2.0 flow for server-to-server calls: the service account's key file (JSON with
``client_email``, ``private_key``, ``private_key_id``, ``token_uri``) signs a JWT (RS256) whose
claims name the account (``iss``), the scope, the token endpoint (``aud``) and a lifetime of at
most an hour; ``POST token_uri`` with ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``
and the JWT as ``assertion`` answers ``{"access_token", "expires_in", "token_type"}``.

Secrets stay here: the private key and the access token never go into an error message or a
log line (errors name the account's e-mail, which is not a secret, and Google's error code).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

import orjson

from koop_app import net
from koop_app.errors import SourceAuthError, SourceFormatError

logger = logging.getLogger(__name__)

SCOPE = "https://www.googleapis.com/auth/analytics.readonly"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_TOKEN_URL = "https://oauth2.googleapis.com/token"
# Google accepts assertions valid for at most an hour.
ASSERTION_SECONDS = 3600
# A token is renewed this long before Google says it expires: a report reading many pages
# must not see it lapse half-way.
RENEW_BEFORE_SECONDS = 300


class CredentialsError(ValueError):
    """The key file is not a usable service-account key (the message never quotes it)."""


@dataclass(frozen=True)
class ServiceAccount:
    """A parsed service-account key: who signs, with what, and where tokens come from."""

    client_email: str
    private_key_id: str
    token_uri: str
    key: Any = field(repr=False, compare=False)  # cryptography's RSAPrivateKey
    fingerprint: str = field(repr=False)  # tells keys apart in the token cache, not secret

    def __repr__(self) -> str:  # the key never shows in tracebacks or logs
        return f"ServiceAccount({self.client_email!r})"


def parse_service_account(raw: str | bytes | Mapping[str, Any]) -> ServiceAccount:
    """The service account of a key file's JSON (text or parsed); CredentialsError if unusable."""
    if isinstance(raw, Mapping):
        return _parse(orjson.dumps(dict(raw)).decode())
    return _parse(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw))


@lru_cache(maxsize=32)
def _parse(text: str) -> ServiceAccount:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise CredentialsError("is not JSON: paste the service account's key file (JSON) "
                               "as downloaded from Google Cloud") from None
    if not isinstance(data, dict):
        raise CredentialsError("must be the JSON object of a service account's key file")
    if data.get("type", "service_account") != "service_account":
        raise CredentialsError("is not a service account's key file (its type is not "
                               "service_account)")
    email, pem = data.get("client_email"), data.get("private_key")
    if not isinstance(email, str) or "@" not in email:
        raise CredentialsError("has no client_email")
    if not isinstance(pem, str) or "PRIVATE KEY" not in pem:
        raise CredentialsError("has no private_key (PEM)")
    token_uri = data.get("token_uri") or DEFAULT_TOKEN_URL
    if not isinstance(token_uri, str):
        raise CredentialsError("has a token_uri that is not text")
    key = _load_key(pem)
    fingerprint = hashlib.sha256(pem.encode()).hexdigest()[:16]
    return ServiceAccount(email, str(data.get("private_key_id") or ""), token_uri, key,
                          fingerprint)


def _load_key(pem: str) -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError:  # pragma: no cover - requirements.txt installs it
        raise CredentialsError("cannot be read: the 'cryptography' package is not installed"
                               ) from None
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        # cryptography's message may describe the key's bytes: say only that it is unreadable.
        raise CredentialsError("has a private_key that cannot be read (not an unencrypted "
                               "PEM key)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CredentialsError("has a private_key that is not an RSA key (RS256 needs one)")
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def signed_assertion(account: ServiceAccount, audience: str, scope: str = SCOPE,
                     now: float | None = None) -> str:
    """The RS256-signed JWT that asks ``audience`` for a token of ``scope``."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    issued = int(time.time() if now is None else now)
    header = {"alg": "RS256", "typ": "JWT"}
    if account.private_key_id:
        header["kid"] = account.private_key_id
    claims = {"iss": account.client_email, "scope": scope, "aud": audience,
              "iat": issued, "exp": issued + ASSERTION_SECONDS}
    signing_input = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}"
    signature = account.key.sign(signing_input.encode("ascii"), padding.PKCS1v15(),
                                 hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


class TokenCache:
    """Access tokens by (account key, token URL, scope), until shortly before they expire.

    One per process: every dataset of one service account shares its token, as Google's
    client libraries do. A lock per key keeps concurrent refreshes from each signing in.
    """

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self.exchanges = 0  # token requests made (for tests and the log)

    def clear(self) -> None:
        with self._guard:
            self._tokens.clear()
            self.exchanges = 0

    def forget(self, account: ServiceAccount, token_url: str, scope: str = SCOPE) -> None:
        """Drop the token (Google said it is no longer valid)."""
        with self._guard:
            self._tokens.pop((account.fingerprint, token_url, scope), None)

    def token(self, account: ServiceAccount, token_url: str, scope: str = SCOPE) -> str:
        key = (account.fingerprint, token_url, scope)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            cached = self._tokens.get(key)
            if cached is not None and cached[1] > time.time():
                return cached[0]
            token, lifetime = exchange(account, token_url, scope)
            self.exchanges += 1
            keep = max(0.0, lifetime - min(RENEW_BEFORE_SECONDS, lifetime / 2))
            with self._guard:
                self._tokens[key] = (token, time.time() + keep)
            logger.info("googleanalytics: signed in as %s (token kept %d s)",
                        account.client_email, int(keep))
            return token


tokens = TokenCache()


def exchange(account: ServiceAccount, token_url: str, scope: str = SCOPE) -> tuple[str, float]:
    """POST the signed assertion to ``token_url``: (access token, seconds it lives)."""
    body = urlencode({"grant_type": GRANT_TYPE,
                      "assertion": signed_assertion(account, token_url, scope)}).encode()
    answer = net.request("POST", token_url, body=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded",
                                  "Accept": "application/json"},
                         max_bytes=1_000_000, accept={400, 401, 403})
    data = _json(answer.body)
    if answer.status != 200:
        code = _safe_text(data.get("error")) or f"HTTP {answer.status}"
        about = _safe_text(data.get("error_description"))
        detail = f"{code}: {about}" if about else code
        raise SourceAuthError(
            f"Google refused the service account's credentials ({detail}). Check that the key "
            "file is current (not deleted or rotated) and belongs to the service account.",
            log_message=f"token exchange for {account.client_email} at {token_url}: "
                        f"HTTP {answer.status} {detail}")
    token, lifetime = data.get("access_token"), data.get("expires_in", 3600)
    if not isinstance(token, str) or not token:
        raise SourceFormatError("Google's token endpoint answered without an access token.",
                                log_message=f"token exchange at {token_url}: no access_token")
    if not isinstance(lifetime, (int, float)) or isinstance(lifetime, bool) or lifetime <= 0:
        lifetime = 3600
    return token, float(lifetime)


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise SourceFormatError("Google's token endpoint did not answer JSON.") from None
    if not isinstance(data, dict):
        raise SourceFormatError("Google's token endpoint answered something other than an "
                                "object.")
    return data


def _safe_text(value: Any, limit: int = 200) -> str:
    """An error code or description from Google, short and on one line."""
    if not isinstance(value, str):
        return ""
    text = " ".join(value.split())
    return text if len(text) <= limit else text[:limit] + "…"


__all__ = ["SCOPE", "CredentialsError", "ServiceAccount", "TokenCache", "exchange",
           "parse_service_account", "signed_assertion", "tokens"]
