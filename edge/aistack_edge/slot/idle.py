"""Idle before start: the fence's second guard, which trusts neither time nor Redis.

After a workload has taken the lease, and before it makes room and starts, it asks every
backend on the slot's GPU whether it runs a job (from any edge: a lease lost to a paused
edge, a job still stopping), all at once, one cheap request each, and waits for none to
within its wait budget. How each backend says so:

- the service shell (the ASR backends, tts-piper, llm-llamacpp): `GET /status`, its
  `jobs` (worker threads or evaluations still running, model loads included);
- vLLM (tts-qwen3, an LLM upstream): `GET /metrics`, its `vllm:num_requests_running`
  and `vllm:num_requests_waiting` gauges (a waiting request starts on its own);
- Ollama: `GET /api/ps`, the models it has loaded. Ollama has no count of running
  requests; an unload (`keep_alive: 0`) of a model that serves a request waits for the
  request to end, and only then tears the runner down and drops it from `/api/ps`
  (server/sched.go: `processCompleted`, the expired event that retries while
  `refCount > 0`, `runner.unload()` then `delete(s.loaded, ...)`; server/routes.go:
  `PsHandler` lists `s.sched.loadedModels()`). So "no model listed after an unload"
  is Ollama's idle, read after making room, and on the stop path.

A backend that refuses the connection runs nothing (its process is gone). One that does
not answer in time (hung, or a saturated machine) is logged and not counted: a process
that cannot answer cannot take new work either, and the fencing tokens still hold. One
that reports in none of these ways is logged once and counted idle: nothing can be read
from it.
"""

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import aiohttp

from aistack_edge.errors import RetryLater

log = logging.getLogger(__name__)

_POLL_S = 0.05
# The edge's session leaves bodies compressed (it relays them): ask for plain ones.
_PLAIN = {"Accept-Encoding": "identity"}
_VLLM_GAUGES = ("vllm:num_requests_running", "vllm:num_requests_waiting")

Kind = Literal["status", "vllm", "none"]


class GpuBusy(RetryLater):
    """A backend on the slot's GPU still runs a job: 503 network, with Retry-After."""

    def __init__(self, busy: Iterable[str], retry_after_s: int) -> None:
        named = ", ".join(busy)
        super().__init__(
            f"the GPU is busy ({named} still runs a job: one from another edge, or one "
            "still stopping); retry later",
            retry_after_s,
        )


@dataclass(frozen=True)
class Reading:
    url: str
    running: int | None
    """Jobs running; None when the backend did not answer in time."""

    @property
    def busy(self) -> bool:
        return bool(self.running)


class IdleCheck:
    """Reads whether the backends on the slot's GPU run jobs (see the module's docstring)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        urls: Iterable[str],
        ollama_url: str | None,
        timeout_s: float,
    ) -> None:
        self._session = session
        self.urls = list(dict.fromkeys(url for url in urls if url != ollama_url))
        self.ollama_url = ollama_url
        self._timeout_s = timeout_s
        self._kinds: dict[str, Kind] = {}

    async def readings(self, timeout_s: float | None = None) -> list[Reading]:
        """Every backend's running jobs, read at once."""
        return list(await asyncio.gather(*(self.read(url, timeout_s) for url in self.urls)))

    async def wait_idle(self, budget_s: float, retry_after_s: int) -> None:
        """Return once no backend runs a job; GpuBusy when one still does after `budget_s`.
        A reading may take the whole budget (a loaded machine answers slowly)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget_s
        while busy := [r.url for r in await self.readings(deadline - loop.time()) if r.busy]:
            if loop.time() >= deadline:
                log.warning("GPU busy past the wait: %s", ", ".join(busy))
                raise GpuBusy(busy, retry_after_s)
            await asyncio.sleep(_POLL_S)

    async def read(self, url: str, timeout_s: float | None = None) -> Reading:
        """How many jobs the backend at `url` runs now, read within `timeout_s` (at least
        AISTACK_PROBE_TIMEOUT_S)."""
        try:
            async with asyncio.timeout(max(timeout_s or 0.0, self._timeout_s)):
                kind = self._kinds.get(url) or await self._kind_of(url)
                if kind == "status":
                    return Reading(url, await self._status_jobs(url))
                if kind == "vllm":
                    return Reading(url, await self._vllm_running(url))
                return Reading(url, 0)
        except aiohttp.ClientConnectorError:
            return Reading(url, 0)  # nothing listens there: no process, no job
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            log.warning("no job count from %s: %s", url, str(exc) or type(exc).__name__)
            return Reading(url, None)

    async def ollama_models(self) -> list[str] | None:
        """The models Ollama has loaded (`/api/ps`); None when it did not answer in time."""
        if self.ollama_url is None:
            return []
        try:
            async with (
                asyncio.timeout(self._timeout_s),
                self._session.get(self.ollama_url + "/api/ps", headers=_PLAIN) as r,
            ):
                r.raise_for_status()
                return [model["name"] for model in (await r.json())["models"]]
        except aiohttp.ClientConnectorError:
            return []
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            log.info("no loaded models from Ollama: %s", str(exc) or type(exc).__name__)
            return None

    async def wait_ollama_idle(self, budget_s: float, retry_after_s: int) -> None:
        """Return once Ollama lists no model (after an unload: its requests have ended)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget_s
        while (models := await self.ollama_models()) != []:
            if loop.time() >= deadline:
                raise GpuBusy([f"Ollama ({', '.join(models or ['no answer'])})"], retry_after_s)
            await asyncio.sleep(_POLL_S)

    async def _kind_of(self, url: str) -> Kind:
        """How the backend at `url` reports its jobs: learnt once, on the first reading."""
        async with self._session.get(url + "/status", headers=_PLAIN) as r:
            if r.status == 200 and isinstance((await r.json()).get("jobs"), int):
                return self._learnt(url, "status")
        async with self._session.get(url + "/metrics", headers=_PLAIN) as r:
            if r.status == 200 and _VLLM_GAUGES[0] in await r.text():
                return self._learnt(url, "vllm")
        log.warning("%s reports no running jobs (no /status, no vLLM metrics)", url)
        return self._learnt(url, "none")

    def _learnt(self, url: str, kind: Kind) -> Kind:
        self._kinds[url] = kind
        return kind

    async def _status_jobs(self, url: str) -> int:
        async with self._session.get(url + "/status", headers=_PLAIN) as r:
            r.raise_for_status()
            return int((await r.json())["jobs"])

    async def _vllm_running(self, url: str) -> int:
        async with self._session.get(url + "/metrics", headers=_PLAIN) as r:
            r.raise_for_status()
            return vllm_requests(await r.text())


def vllm_requests(exposition: str) -> int:
    """The requests vLLM runs or queues, from its Prometheus text (every model summed)."""
    total = 0.0
    for line in exposition.splitlines():
        if line.startswith(_VLLM_GAUGES):
            total += float(line.rsplit(" ", 1)[1])
    return round(total)
