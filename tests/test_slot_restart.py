"""A stuck backend's container restarted from the edge through the Docker Engine API
(edge/aistack_edge/slot/restart.py), for backends that cannot exit by themselves
(vLLM-Omni, Ollama): past the stop grace, `POST /containers/{name}/restart`; the slot is
released once the restarted backend reads idle."""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from pydantic import ValidationError

from aistack_edge.config import EdgeSettings
from aistack_testing.asr_protocol import wait_until
from aistack_testing.processes import free_port
from tests.test_workload import Vllm

CONTAINER = "aistack-tts-qwen3-1"


class Restartable:
    """The vLLM stand-in of test_workload.py on a fixed port, as a container runs it:
    `restart` stops the process (its requests die with it) and starts a fresh one."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.vllm = Vllm()
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.vllm.app(), shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def restart(self) -> None:
        await self.stop()
        self.vllm = Vllm()
        await self.start()


class Docker:
    """The Docker Engine API's `POST [/v{version}]/containers/{name}/restart` on a unix
    socket, as moby's daemon serves it (moby/moby api/server/router/container:
    container.go routes it, container_routes.go `postContainersRestart` reads `t` and
    `signal`, restarts the container and answers 204 with no body once it runs again;
    an unknown name is errdefs' not found: 404 `{"message": "No such container: …"}`,
    docs.docker.com's ContainerRestart operation)."""

    def __init__(self, containers: dict[str, Restartable]) -> None:
        self.containers = containers
        self.restarts: list[tuple[str, dict[str, str]]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/containers/{name}/restart", self.restart)
        app.router.add_post("/v{version}/containers/{name}/restart", self.restart)
        return app

    async def restart(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.restarts.append((name, dict(request.query)))
        if name not in self.containers:
            return web.json_response({"message": f"No such container: {name}"}, status=404)
        await self.containers[name].restart()
        return web.Response(status=204)


@contextlib.asynccontextmanager
async def docker_on(socket: Path, docker: Docker) -> AsyncIterator[None]:
    runner = web.AppRunner(docker.app())
    await runner.setup()
    await web.UnixSite(runner, str(socket)).start()
    try:
        yield
    finally:
        await runner.cleanup()


async def _slot(client: httpx.AsyncClient, edge_url: str) -> dict:
    return (await client.get(edge_url + "/admin/api/status")).json()["slot"]


async def hang_up_on(client: httpx.AsyncClient, edge_url: str, vllm: Vllm) -> None:
    speech = {"model": Vllm.MODEL, "input": "A step that never ends.", "voice": "vivian"}
    async with client.stream("POST", edge_url + "/v1/audio/speech", json=speech) as r:
        assert r.status_code == 200
        async for _ in r.aiter_bytes():
            break  # the client hangs up at the first bytes

    async def hung_up() -> bool:
        return vllm.hung_up.is_set()

    await wait_until(hung_up, 30)


@pytest.mark.parametrize("named", [CONTAINER, "no-such-container"])
async def test_a_stuck_container_is_restarted_and_the_slot_freed(services, tmp_path, named):
    """vLLM's step never ends: past the grace the edge restarts its container, and the
    slot is free once the new process reads idle. A container Docker does not know
    (404) is logged, and the slot stays held while vLLM computes."""
    backend = Restartable()
    await backend.start()
    docker, socket = Docker({CONTAINER: backend}), tmp_path / "docker.sock"
    try:
        async with docker_on(socket, docker), httpx.AsyncClient(timeout=30) as client:
            env = {
                "AISTACK_TTS_BACKENDS": backend.url,
                "AISTACK_STOP_GRACE_S": "1",
                "AISTACK_RESTART_CONTAINERS": f"{backend.url}={named}",
                "AISTACK_DOCKER_SOCKET": str(socket),
            }
            edge = services.start("aistack_edge", env=env)
            await hang_up_on(client, edge.url, backend.vllm)

            async def restart_asked() -> bool:
                return bool(docker.restarts)

            await wait_until(restart_asked, 30)
            assert docker.restarts == [(named, {"t": "5"})]
            if named == CONTAINER:

                async def free() -> bool:
                    return (await _slot(client, edge.url))["holder"] is None

                await wait_until(free, 30)
                assert "container aistack-tts-qwen3-1 restarted" in edge.output()
            else:
                # Docker's refusal logged: the slot is still held, stuck

                async def refused() -> bool:
                    return "No such container: no-such-container" in edge.output()

                await wait_until(refused, 30)
                slot = await _slot(client, edge.url)
                assert slot["holder"] is not None and slot["stuck"], slot
                backend.vllm.step_done.set()
    finally:
        await backend.stop()


def test_the_container_setting_is_url_equals_name():
    settings = EdgeSettings(restart_containers="http://tts:8000/=qwen3, http://ollama:11434=ollama")
    assert settings.restart_containers == {
        "http://tts:8000": "qwen3",
        "http://ollama:11434": "ollama",
    }
    with pytest.raises(ValidationError, match="not URL=container"):
        EdgeSettings(restart_containers="qwen3")
