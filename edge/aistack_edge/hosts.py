"""The Host header check of a loopback-bound edge, against DNS rebinding.

A web page can make its own name resolve to 127.0.0.1 and then call the edge from the
browser as if from its own origin: the only trace is the Host header, which names the
page's host. So an edge that listens on loopback answers only requests whose Host is a
localhost name (`localhost`, `*.localhost`), a loopback address, or one of
`AISTACK_ALLOWED_HOSTS`; any other is refused (400 `malformed`) before its body is read.
An edge that listens beyond loopback serves whatever names reach it, and checks nothing.
A request with no Host (HTTP/1.0) is not a browser's, and passes.
"""

from aiohttp import web
from aiohttp.typedefs import Handler

from aistack_edge.peers import is_loopback
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


def allowed(host: str, extra: list[str]) -> bool:
    name = host_name(host)
    if name == "localhost" or name.endswith(".localhost"):
        return True
    return name in extra or (name != "" and is_loopback(name))


@web.middleware
async def check_host(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    host = request.headers.get("Host")
    if (
        host is not None
        and is_loopback(settings.host)
        and not allowed(host, settings.allowed_hosts)
    ):
        raise web.HTTPBadRequest(
            text=f"this edge does not answer to the host {host_name(host)!r} (a localhost "
            "name, a loopback address or one of AISTACK_ALLOWED_HOSTS)"
        )
    return await handler(request)
