"""Host name -> addresses, every one checked against the policy before any is used.

    addresses = checked_addresses(parse_url(url), timeout=5.0)   # or SourceRefusedError

The addresses returned are the ones to connect to: the client never hands the name to a second
resolver (``socket.create_connection`` would), so DNS cannot answer differently between the
check and the connection (DNS rebinding).
"""

from __future__ import annotations

import socket
import threading
from ipaddress import ip_address

from koop_app.errors import SourceConnectError, SourceRefusedError
from koop_app.net.addresses import IPAddress, canonical, refusal_reason
from koop_app.net.urls import SourceURL


def resolve(url: SourceURL, timeout: float) -> list[IPAddress]:
    """The addresses of ``url``'s host, in the resolver's order; OSError when there are none.

    ``getaddrinfo`` takes no timeout, so it runs in a daemon thread that is left behind when it
    is slower than ``timeout`` (it ends with the system resolver's own timeout).
    """
    if url.address is not None:
        return [url.address]
    answer: list[object] = []

    def lookup() -> None:
        try:
            answer.append(socket.getaddrinfo(url.host, url.port, type=socket.SOCK_STREAM,
                                             proto=socket.IPPROTO_TCP))
        except (OSError, UnicodeError) as exc:
            answer.append(exc)

    thread = threading.Thread(target=lookup, name=f"resolve {url.host}", daemon=True)
    thread.start()
    thread.join(timeout)
    if not answer:
        raise TimeoutError(f"no DNS answer for {url.host} within {timeout:.1f} s")
    if isinstance(answer[0], BaseException):
        raise answer[0]
    addresses: list[IPAddress] = []
    for family, _, _, _, sockaddr in answer[0]:  # type: ignore[attr-defined]
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ip_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OSError(f"no IP address for {url.host}")
    return addresses


def checked_addresses(url: SourceURL, timeout: float) -> list[IPAddress]:
    """The addresses to connect to for ``url``, all allowed; SourceRefusedError if any is not.

    One refused address refuses the host: a name that answers both a public and a private
    address would otherwise reach the private one whenever the public one fails.
    """
    try:
        addresses = resolve(url, timeout)
    except (OSError, UnicodeError) as exc:
        raise SourceConnectError(log_message=f"cannot resolve {url.host}: {exc}") from None
    refusals = [f"{address} ({reason})" for address in addresses
                if (reason := refusal_reason(address)) is not None]
    if refusals:
        raise SourceRefusedError(
            log_message=f"{url.host} refused by policy: {', '.join(refusals)}")
    connectable: list[IPAddress] = []
    for address in map(canonical, addresses):
        if address not in connectable:
            connectable.append(address)
    return connectable
