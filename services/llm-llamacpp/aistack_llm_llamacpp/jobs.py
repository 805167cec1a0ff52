"""Completions as jobs of the internal protocol: `DELETE /jobs/{id}` stops one.

A completion is tracked by its `X-Request-ID` for as long as the app serves it; a
streamed one ends at the next token once its client hangs up (llama.cpp's server checks
between tokens), but a whole answer runs to its end. So a cancelled job also stops the
model itself: every evaluation step checks the job of the request it serves (the job
table's context variable, which the server's worker threads inherit) and raises when it
was cancelled. Each step counts as the job's compute: the job stays in the table, and
`DELETE /jobs/{id}` says it runs, until the step under way has ended, even when the
request's handler is gone.
"""

import uuid

import llama_cpp
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from aistack_contract.errors import AistackError
from aistack_contract.jobs import FENCE_HEADER, JOBS_PATH, Jobs, current_job, fence_of, wait_of
from aistack_llm_llamacpp import PROVIDER
from aistack_llm_llamacpp.asgi import HttpMiddleware

JOBS = Jobs(PROVIDER)
_FENCE = FENCE_HEADER.lower().encode()
_GENERATING = frozenset({"/v1/chat/completions", "/v1/completions"})

router = APIRouter()


class Cancelled(RuntimeError):
    """The completion's job was cancelled: raised inside the model's evaluation loop."""


@router.get("/status")
async def status() -> dict:
    """The completions running (the fence waits for none), and the newest fence accepted."""
    return {"jobs": len(JOBS.running()), "fence": JOBS.fence}


@router.delete(JOBS_PATH)
async def stop_job(job_id: str, request: Request) -> dict:
    """Cancel a completion; answer once it stopped (or after `?wait=` seconds)."""
    state = await JOBS.stop(job_id, wait_of(request.query_params.get("wait")))
    return state.model_dump()


class JobMiddleware(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] not in _GENERATING:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        job_id = headers.get(b"x-request-id", b"").decode() or uuid.uuid4().hex
        try:
            JOBS.admit(job_id, fence_of(headers.get(_FENCE, b"").decode() or None))
        except AistackError as exc:  # a stale fencing token: the job never starts
            await JSONResponse(exc.envelope(), status_code=exc.status)(scope, receive, send)
            return
        with JOBS.track(job_id):
            await self.app(scope, receive, send)


def stop_cancelled_evaluation() -> None:
    """Make every evaluation step of llama.cpp's model check its request's job."""
    evaluate = llama_cpp.Llama.eval
    if getattr(evaluate, "checks_jobs", False):
        return

    def checked(self: llama_cpp.Llama, tokens: list[int]) -> None:
        job = current_job()
        if job is None:
            evaluate(self, tokens)
            return
        if job.cancelled or not job.begin_compute():
            raise Cancelled(f"job {job.id} was cancelled")
        try:
            evaluate(self, tokens)
        finally:
            job.end_compute()

    checked.checks_jobs = True  # type: ignore[attr-defined]
    llama_cpp.Llama.eval = checked  # type: ignore[method-assign]
