"""Requests per client and time window, counted in Django's cache: ``RateLimitMiddleware``.

Off unless ``KOOP["RATE_LIMIT"]`` is set, e.g. ``"600/minute"`` (also ``/second``, ``/hour``,
``/day``). Each client gets a fixed window counter in the default cache, so all processes and
hosts share it when the cache is Redis (django-redis); the embedded file cache counts per
machine. The client is the connection's address; a proxy's ``X-Forwarded-For`` or
``Forwarded`` is believed only when the connection comes from a network in
``KOOP["TRUSTED_PROXIES"]`` (koop_app/forwarded.py). IPv6 clients count per /64, the block a
single subscriber usually holds.

Over the limit the answer is HTTP 429 with ``{"error": {"code": 429, ...}}`` and
``Retry-After``; under ``/rest/`` the GeoServices error middleware turns it into the HTTP 200
that ArcGIS clients expect. A cache that fails lets requests through and logs: a cache outage
must not take the site down.

    MIDDLEWARE = ["django.middleware.security.SecurityMiddleware",
                  "koop_app.ratelimit.RateLimitMiddleware", ...]
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

from koop_app import forwarded
from koop_app.conf import koop_settings
from koop_app.logs import log_event
from koop_app.net.addresses import canonical

logger = logging.getLogger(__name__)

PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600,
           "hour": 3600, "d": 86400, "day": 86400}
# Not counted: load balancers and monitors probe these from one address.
EXEMPT_PATHS = ("/health",)

@dataclass(frozen=True)
class Rate:
    requests: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.requests} requests per {self.seconds} s"


@functools.lru_cache(maxsize=16)
def parse_rate(text: str) -> Rate:
    """``"600/minute"`` -> Rate(600, 60); ImproperlyConfigured names the setting otherwise."""
    count, _, period = str(text).partition("/")
    try:
        requests = int(count.strip())
        seconds = PERIODS[period.strip().lower()]
    except (ValueError, KeyError):
        raise ImproperlyConfigured(
            f"KOOP['RATE_LIMIT'] {text!r} is not a rate such as '600/minute' "
            f"(periods: second, minute, hour, day)") from None
    if requests < 1:
        raise ImproperlyConfigured(f"KOOP['RATE_LIMIT'] {text!r} must allow at least 1 request")
    return Rate(requests, seconds)


def client_address(request: HttpRequest) -> str:
    """The client's address, or its IPv6 /64; a proxy's word only when it is trusted."""
    remote = forwarded.client_address(request.META)
    if remote is None:
        return "unknown"
    remote = canonical(remote)  # ::ffff:1.2.3.4 is the IPv4 client 1.2.3.4
    if isinstance(remote, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((remote, 64), strict=False))
    return str(remote)


class RateLimitMiddleware:
    """Counts each client's requests per window and refuses those over KOOP['RATE_LIMIT']."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        setting = koop_settings.RATE_LIMIT
        if setting and not request.path.startswith(EXEMPT_PATHS):
            refused = self.check(request, parse_rate(setting))
            if refused is not None:
                return refused
        return self.get_response(request)

    def check(self, request: HttpRequest, rate: Rate) -> HttpResponse | None:
        now = time.time()
        window = int(now // rate.seconds)
        client = client_address(request)
        key = f"koop:rate:{rate.seconds}:{window}:{client}"
        try:
            cache.add(key, 0, timeout=rate.seconds + 1)
            count = cache.incr(key)
        except Exception as exc:  # noqa: BLE001 - any cache failure: let the request through
            log_event(logger, logging.WARNING, "ratelimit.cache_failed",
                      f"rate limit not applied, the cache failed: {exc!r}", client=client)
            return None
        if count is None:  # django-redis with IGNORE_EXCEPTIONS: an outage reads as None
            log_event(logger, logging.WARNING, "ratelimit.cache_failed",
                      "rate limit not applied, the cache did not answer", client=client)
            return None
        if count <= rate.requests:
            return None
        retry_after = max(1, math.ceil((window + 1) * rate.seconds - now))
        if count == rate.requests + 1:  # once per client and window, not per refused request
            log_event(logger, logging.WARNING, "ratelimit.exceeded",
                      f"client {client} passed {rate}", client=client, limit=str(rate))
        return refusal(rate, retry_after)


def refusal(rate: Rate, retry_after: int) -> HttpResponse:
    detail = (f"At most {rate.requests} requests per {rate.seconds} seconds from one client; "
              f"retry in {retry_after} seconds.")
    body = {"error": {"code": 429, "message": "Too many requests.", "details": [detail]}}
    response = HttpResponse(orjson.dumps(body), content_type="application/json", status=429)
    response["Retry-After"] = str(retry_after)
    # Browser clients on other origins read it too (GeoServices answers carry CORS headers).
    response["Access-Control-Expose-Headers"] = "Retry-After"
    return response
