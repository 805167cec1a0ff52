"""A backend's own weights, in the folder `make models` fills for it (`AISTACK_MODELS_DIR`,
its `/models`), by the same code (aistack_service.weights): the edge's admin page asks each
backend, since the edge mounts no model volume.

- `GET /weights`: `{"dir", "pulling", "weights": [{"repo", "status", "files", "size",
  "completed", "total"}]}`; a status is `present`, `missing` or `fetching`.
- `POST /weights/pull` `{"repo": "<hub id>"}`: the fetch's progress as NDJSON, one object
  a line, as Ollama's `/api/pull` streams it (server/routes.go `PullHandler`: a `status`
  with `total` and `completed` while a file moves, `{"status": "success"}` at the end, or
  `{"error": "..."}`). The pull runs to its end even if the caller goes away.

Refusals, before the stream begins: a repository this backend does not load, 404; a pull
already running here, or a fetch into the folder by another process (`make models`), 409;
the hub unreachable, refusing, or no hub client in the image, 503.
"""

import asyncio
import contextlib
import json
import logging
from pathlib import Path

from aiohttp import web

from aistack_contract.errors import AistackError, ErrorBody, ErrorKind
from aistack_service.http import PROVIDER, envelope_response
from aistack_service.weights import Outcome, Weights, check, listing, locked, of_backend, run

log = logging.getLogger("aistack_service.weights")

NDJSON = "application/x-ndjson"
REVISION = "main"


class Pulls:
    """The backend's weights, and the one pull it runs at a time."""

    def __init__(self, backend: str, models_dir: Path, sizes: list[str]) -> None:
        self.dir = models_dir
        self.wanted = of_backend(backend, sizes)
        self.pulling: str | None = None
        self.progress = {"completed": 0, "total": 0}
        self._done = 0  # bytes of the pull's files already whole
        self.task: asyncio.Task | None = None

    def find(self, repo: object) -> Weights | None:
        return next((w for w in self.wanted if w.repo_id == repo), None)

    def state(self) -> dict:
        def row(outcome: Outcome) -> dict:
            weights = outcome.weights
            fetching = weights.repo_id == self.pulling
            return {
                "repo": weights.repo_id,
                "status": "fetching" if fetching else outcome.status,
                "files": outcome.files,
                "size": outcome.size,
                **(self.progress if fetching else {"completed": None, "total": None}),
            }

        rows = [row(check(w, self.dir)) for w in self.wanted]
        return {"dir": str(self.dir), "pulling": self.pulling, "weights": rows}

    def begin(self, repo: str) -> None:
        self.pulling, self._done = repo, 0
        self.progress = {"completed": 0, "total": 0}

    def follow(self, event: dict) -> None:
        """The pull's figures for `GET /weights`, from its progress events."""
        if event["status"] == "listed":
            self.progress = {"completed": 0, "total": event["total"]}
        elif event["status"] in ("present", "verified"):
            self._done += event["total"]
            self.progress["completed"] = self._done
        elif event["status"] == "pulling":
            self.progress["completed"] = self._done + event["completed"]


PULLS = web.AppKey("pulls", Pulls)


def add_routes(app: web.Application, backend: str, models_dir: Path, sizes: list[str]) -> None:
    """`GET /weights` and `POST /weights/pull` on `app`, for `backend`'s catalogue entries
    (scripts/models.py's names: `asr-whisper`, ...) in `models_dir`."""
    app[PULLS] = Pulls(backend, models_dir, sizes)
    app.router.add_get("/weights", list_weights)
    app.router.add_post("/weights/pull", pull)


async def list_weights(request: web.Request) -> web.Response:
    return web.json_response(await asyncio.to_thread(request.app[PULLS].state))


async def pull(request: web.Request) -> web.StreamResponse:
    pulls, provider = request.app[PULLS], request.app[PROVIDER]
    try:
        repo = (await request.json()).get("repo")
    except (ValueError, AttributeError):
        raise AistackError(ErrorKind.MALFORMED, 'send {"repo": "<hub id>"}', provider) from None
    weights = pulls.find(repo)
    if weights is None:
        known = ", ".join(w.repo_id for w in pulls.wanted) or "none"
        message = f"{repo!r} is not a model this backend loads (it loads: {known})"
        return envelope_response(ErrorBody(kind=ErrorKind.MALFORMED, provider=provider,
                                           message=message), 404)  # fmt: skip
    if pulls.pulling is not None:
        return _busy(provider, f"{pulls.pulling} is being pulled here; wait for it to end")
    hold = contextlib.ExitStack()
    if not hold.enter_context(locked(pulls.dir, wait=False)):
        hold.close()
        return _busy(provider, f"another fetch (make models?) is filling {pulls.dir}")
    pulls.begin(weights.repo_id)
    try:
        await asyncio.to_thread(listing, weights, REVISION)  # the hub answers, before the 200
    except BaseException as exc:  # a refusal, or the caller gone (the handler cancelled)
        pulls.pulling = None
        hold.close()
        if not isinstance(exc, Exception):
            raise
        raise AistackError(ErrorKind.NETWORK, _hub_failure(exc), provider) from None
    events: asyncio.Queue[dict | None] = asyncio.Queue()
    pulls.task = asyncio.create_task(_run(pulls, weights, hold, events))
    response = web.StreamResponse(headers={"Content-Type": NDJSON})
    await response.prepare(request)
    # The caller gone (a write fails, or the shell cancels this handler): the pull goes on.
    with contextlib.suppress(ConnectionError):
        while (event := await events.get()) is not None:
            await response.write(json.dumps(event).encode() + b"\n")
        await response.write_eof()
    return response


def _busy(provider: str, message: str) -> web.Response:
    return envelope_response(ErrorBody(kind=ErrorKind.MALFORMED, provider=provider,
                                       message=message), 409)  # fmt: skip


def _hub_failure(exc: Exception) -> str:
    """Why the hub gave no listing, for the 503."""
    if isinstance(exc, ImportError):
        return f"this backend's image has no hub client ({exc.name}): run make models"
    if isinstance(exc, (RuntimeError, OSError)):  # the hub's own refusal (404, 401, offline)
        return f"the hub refused the listing: {exc}"
    return (
        f"the hub can't be reached from this backend ({type(exc).__name__}): give it a way "
        "out or a mirror (HF_ENDPOINT), or run make models where there is one"
    )


async def _run(pulls: Pulls, weights: Weights, hold: contextlib.ExitStack, events) -> None:
    """The fetch on a worker thread; its events to `events`, then the last one and None."""
    loop = asyncio.get_running_loop()

    def report(event: dict) -> None:
        loop.call_soon_threadsafe(pulls.follow, event)
        loop.call_soon_threadsafe(events.put_nowait, event)

    try:
        with hold:
            [outcome] = await asyncio.to_thread(run, pulls.dir, [weights], report=report)
        # A hub lost halfway leaves what was there before: not a success (its note says so).
        failure = outcome.error or outcome.note
        ended = {"error": failure} if failure else {"status": "success"}
        log.info("pulled %s: %s", weights.repo_id, failure or outcome.status)
    except Exception as exc:  # the disk, a bug: said to the caller, kept in the log
        log.exception("pull of %s failed", weights.repo_id)
        ended = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        pulls.pulling = None
    events.put_nowait(ended)
    events.put_nowait(None)
