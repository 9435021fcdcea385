"""Who is on the other end of a request: the client's address, for the services' throttles.

The address is the socket's peer, unless that peer is one of the reverse proxies named in
TRUSTED_PROXIES (comma-separated IPs or CIDRs, default none). Each proxy appends the address
it saw to `X-Forwarded-For`, so the header is read from the right: trusted proxies are
skipped and the first address that is not one of them is the client. Entries further left
are whatever the client claimed and are never believed; a malformed entry ends the walk at
the last address a trusted proxy vouched for. Without TRUSTED_PROXIES, `X-Forwarded-For` is
ignored altogether, so no client chooses the address it is throttled by.

    >>> peer_and_chain("10.0.0.5", "198.51.100.7, 10.0.0.9", parse_networks("10.0.0.0/8"))
    '198.51.100.7'
    >>> peer_and_chain("203.0.113.4", "198.51.100.7", ())
    '203.0.113.4'
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from werkzeug.wrappers import Request

from common import settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# the longest text form of an address (IPv6 with an embedded IPv4), what the services accept
ADDRESS_MAX = 45


@lru_cache(maxsize=4)
def parse_networks(raw: str) -> tuple[Network, ...]:
    """The networks of a TRUSTED_PROXIES value; ValueError naming an entry that is neither
    an IP address nor a CIDR."""
    networks = []
    for entry in raw.split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR") from exc
    return tuple(networks)


def trusted_proxies() -> tuple[Network, ...]:
    """The configured trusted proxies (none by default)."""
    return parse_networks(settings.get("TRUSTED_PROXIES", "") or "")


def parse_address(text: str | None) -> Address | None:
    """An address as a socket or a proxy writes it (`203.0.113.4`, `203.0.113.4:5123`,
    `2001:db8::1`, `[2001:db8::1]:443`); IPv4-mapped IPv6 becomes IPv4. None if malformed."""
    if not text:
        return None
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]  # IPv4 with a port
    try:
        address = ipaddress.ip_address(text.partition("%")[0])  # no IPv6 zone
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, proxies: tuple[Network, ...]) -> bool:
    return any(address.version == network.version and address in network for network in proxies)


def peer_and_chain(
    peer: str | None, forwarded_for: str | None, proxies: tuple[Network, ...]
) -> str | None:
    """The client's address from the socket `peer` and the `X-Forwarded-For` header (see the
    module docstring); None when not even the peer is known."""
    address = parse_address(peer)
    if address is None:
        return None
    if _trusted(address, proxies) and forwarded_for:
        for entry in reversed(forwarded_for.split(",")):
            hop = parse_address(entry)
            if hop is None:
                break  # written by the client, or by a broken proxy: believe nothing further
            address = hop
            if not _trusted(hop, proxies):
                break
    return str(address)[:ADDRESS_MAX]


def client_address(request: Request) -> str | None:
    """The address of the client that sent `request`, as the rules above find it."""
    return peer_and_chain(
        request.remote_addr, request.headers.get("X-Forwarded-For"), trusted_proxies()
    )


def with_client_address(payload: dict[str, Any], request: Request) -> dict[str, Any]:
    """`payload` plus `client_address` for a service's throttle (left out when unknown)."""
    address = client_address(request)
    return payload if address is None else {**payload, "client_address": address}
