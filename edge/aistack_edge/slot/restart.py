"""Restarting a stuck backend's container through the Docker Engine API.

A backend on the service shell exits by itself when a cancelled job will not stop
(`aistack_service.stuck`); vLLM-Omni and Ollama cannot. For those (or any backend
named in AISTACK_RESTART_CONTAINERS), the edge asks Docker to restart the container
once a job there has outlived the stop grace: `POST /containers/{name}/restart?t=S` on
the daemon's unix socket, which stops the container (SIGTERM, SIGKILL after S s), starts
it again and answers 204 once it runs (404 for an unknown container, 500 for a failure,
each with `{"message": ...}`). The process gone, its GPU memory is free; the slot is
released as soon as the backend reads idle or refuses connections.

Optional and off by default: the socket gives whoever holds it the Docker host.
"""

import json
import logging
from pathlib import Path
from urllib.parse import quote

import aiohttp

log = logging.getLogger(__name__)

STOP_S = 5
"""How long Docker lets the container stop on SIGTERM before it kills it."""
_ANSWER_S = 120.0
"""A restart's answer comes once the container runs again: a stop, a start."""


async def restart_container(socket: Path, container: str) -> bool:
    """Restart `container` through the Docker Engine API at `socket`; whether it did
    (failures are logged: the slot then stays held until the backend reads idle)."""
    url = f"http://docker/containers/{quote(container, safe='')}/restart"
    timeout = aiohttp.ClientTimeout(total=_ANSWER_S)
    log.warning("restarting container %s (a job there did not stop)", container)
    try:
        async with (
            aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(socket))) as session,
            session.post(url, params={"t": str(STOP_S)}, timeout=timeout) as response,
        ):
            if response.status == 204:
                log.warning("container %s restarted", container)
                return True
            body = await response.read()
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        log.error("no restart of container %s: %s", container, str(exc) or type(exc).__name__)
        return False
    log.error("no restart of container %s: %s %s", container, response.status, _message(body))
    return False


def _message(body: bytes) -> str:
    """Docker's error answer is `{"message": ...}`; anything else as it came."""
    try:
        return str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace")[:200]
