"""Safe outbound HTTP: the one client every provider uses to fetch a source.

    from koop_app.net import check_url, get

    check_url(url)          # when a source URL is saved: ValueError with a message for the admin
    answer = get(url)       # when it is fetched: Response(url, status, headers, body)

Only http(s) URLs whose host resolves to public addresses are fetched; loopback, private,
link-local, CGNAT, multicast, reserved and documentation networks (and IPv6 forms that wrap
them) are refused unless listed in ``KOOP['ALLOWED_SOURCE_NETWORKS']``. The rules are in
``addresses``, URL spellings in ``urls``, the checked resolution in ``resolve`` and the client
(redirects, limits, pinned connections) in ``client``. Plugin authors: call ``get`` rather than
``requests`` or ``urllib``, which would skip every one of these checks.
"""

from __future__ import annotations

from koop_app.conf import koop_settings
from koop_app.net.addresses import refusal_reason
from koop_app.net.client import Response, get, get_to_file, request
from koop_app.net.resolve import resolve
from koop_app.net.urls import SourceURL, URLError, parse_url

__all__ = ["Response", "SourceURL", "check_url", "get", "get_to_file", "parse_url",
           "refusal_reason", "request"]

POLICY_HINT = ("loopback, private, link-local, shared, multicast and reserved addresses are "
               "refused unless listed in KOOP['ALLOWED_SOURCE_NETWORKS']")


def check_url(url: str) -> str:
    """``url`` if it may be registered as a source, else ValueError saying why (for the admin).

    An IP literal is judged at once. A host name is resolved and refused when any address it
    has now is refused. A name that does not resolve now is accepted: DNS may be down, or the
    name not published yet, and every fetch checks again anyway; the first refresh then fails
    with "could not connect".
    """
    try:
        target = parse_url(url)
    except URLError as exc:
        raise ValueError(str(exc)) from None
    if target.address is not None:
        reason = refusal_reason(target.address)
        if reason is not None:
            raise ValueError(f"the address {target.host} is refused by policy ({reason}); "
                             f"{POLICY_HINT}")
        return url
    try:
        addresses = resolve(target, float(koop_settings.CONNECT_TIMEOUT))
    except (OSError, UnicodeError):
        return url
    if any(refusal_reason(address) is not None for address in addresses):
        raise ValueError(f"the host {target.host} resolves to an address refused by policy; "
                         f"{POLICY_HINT}")
    return url
