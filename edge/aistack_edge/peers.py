"""Who is asking: the real peer of a connection, and the client behind a trusted proxy.

The edge decides on the address of the TCP peer, never on its own bind address. A request
that carries a forwarding header (`X-Forwarded-For`, `Forwarded`, `X-Real-IP`) came through a
proxy, or claims to: its client is known only when the peer is one of
`AISTACK_TRUSTED_PROXIES`, and then it is the right-most `X-Forwarded-For` address that is
not itself a trusted proxy (the left part of that header is whatever the client wrote).
Any other forwarded request has an unknown client, which is never a local one: a proxy on
this machine that the edge was not told to trust must not make its LAN clients look local.
"""

import ipaddress
from collections.abc import Sequence

from aiohttp import web

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def parse_address(text: str) -> Address | None:
    """An IP address from a header or a socket name (`[v6]`, a zone, a port on IPv4 dropped);
    None when it is not one."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def is_loopback(host: str) -> bool:
    """Whether a host name or address (an edge's bind address, say) is this machine's."""
    if host == "localhost":
        return True
    address = parse_address(host)
    return address is not None and address.is_loopback


def peer(request: web.Request) -> Address | None:
    """The address at the other end of the connection."""
    transport = request.transport
    name = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(name, (tuple, list)) and name:
        return parse_address(str(name[0]))
    return None


def forwarded(request: web.Request) -> bool:
    """Whether the request says it came through a proxy."""
    return any(header in request.headers for header in FORWARDING_HEADERS)


def trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address in network for network in proxies)


def via_trusted_proxy(request: web.Request, proxies: Sequence[Network]) -> bool:
    """Whether the peer is one of the trusted proxies."""
    address = peer(request)
    return address is not None and trusted(address, proxies)


def client(request: web.Request, proxies: Sequence[Network]) -> Address | None:
    """The client's address: the peer for a direct request, the address a trusted proxy
    forwarded for a proxied one; None when not known."""
    address = peer(request)
    if address is None or not forwarded(request):
        return address
    if not trusted(address, proxies):
        return None
    hops = [
        hop for value in request.headers.getall("X-Forwarded-For", ()) for hop in value.split(",")
    ]
    for hop in reversed(hops):
        hop_address = parse_address(hop)
        if hop_address is None:
            return None
        if not trusted(hop_address, proxies):
            return hop_address
    # Every hop a trusted proxy (or none named): the request started at the last of them.
    return parse_address(hops[0]) if hops else None


def is_local(request: web.Request, proxies: Sequence[Network]) -> bool:
    """A client on this machine: a loopback peer, or one a trusted proxy forwarded."""
    address = client(request, proxies)
    return address is not None and address.is_loopback
