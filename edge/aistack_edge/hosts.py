"""The Host header check, against DNS rebinding, wherever the edge listens.

A web page can make its own name resolve to the edge's address (127.0.0.1, or the
box's LAN address) and then call the edge from the browser as if from its own origin:
the only trace is the Host header, which names the page's host. So the edge answers only
requests whose Host is a localhost name (`localhost`, `*.localhost`), a loopback
address, the address the connection reached (a client that names the box by its IP
address), or one of `AISTACK_ALLOWED_HOSTS` (by default the compose service names and
the k8s Service's); any other is refused (400 `malformed`) before its body is read. A
request with no Host (HTTP/1.0) is not a browser's, and passes.
"""

from aiohttp import web
from aiohttp.typedefs import Handler

from aistack_edge.errors import quoted
from aistack_edge.peers import is_loopback, parse_address
from aistack_edge.state import SETTINGS


def host_name(host: str) -> str:
    """The name or address of a Host header, without its port, lower case, with no
    trailing dot."""
    host = host.strip()
    if host.startswith("["):
        name = host[1:].partition("]")[0]
    else:
        name = host.rpartition(":")[0] if host.count(":") == 1 else host
    return name.lower().rstrip(".")


def allowed(host: str, extra: list[str], reached: str | None = None) -> bool:
    """Whether the edge answers to `host`: `reached` is the address the connection
    reached (its socket's own name), which no rebinding page can be named."""
    name = host_name(host)
    if name == "localhost" or name.endswith(".localhost"):
        return True
    if name in extra or (name != "" and is_loopback(name)):
        return True
    address = parse_address(name)
    return address is not None and reached is not None and address == parse_address(reached)


def _reached(request: web.Request) -> str | None:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return str(sockname[0]) if sockname else None


@web.middleware
async def check_host(request: web.Request, handler: Handler) -> web.StreamResponse:
    host = request.headers.get("Host")
    if host is not None and not allowed(
        host, request.app[SETTINGS].allowed_hosts, _reached(request)
    ):
        raise web.HTTPBadRequest(
            text=f"this edge does not answer to the host {quoted(host_name(host))} (a "
            "localhost name, a loopback address, the address reached, or one of "
            "AISTACK_ALLOWED_HOSTS)"
        )
    return await handler(request)
