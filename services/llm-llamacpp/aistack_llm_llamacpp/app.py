"""llama.cpp's OpenAI-compatible server, with /health, a /v1/models that never waits
for the model, and the error envelope."""

import logging
import time
from pathlib import Path

import llama_cpp.server.app as llama_server
from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from llama_cpp.server.errors import ErrorResponse, RouteErrorHandler
from llama_cpp.server.settings import ModelSettings, ServerSettings

from aistack_llm_llamacpp import PROVIDER
from aistack_llm_llamacpp.envelope import EnvelopeMiddleware
from aistack_llm_llamacpp.jobs import JOBS, JobMiddleware, stop_cancelled_evaluation
from aistack_llm_llamacpp.jobs import router as job_routes
from aistack_llm_llamacpp.model import bundled_gguf
from aistack_llm_llamacpp.settings import LlamaCppSettings
from aistack_llm_llamacpp.telemetry import MODEL_LOAD, TelemetryMiddleware
from aistack_llm_llamacpp.telemetry import router as telemetry_routes
from aistack_llm_llamacpp.usage import UsageMiddleware, count_generated_tokens
from aistack_service.stuck import exit_when_stuck

log = logging.getLogger(__name__)

VERSION = "0.0.1"


def _own_routes(model_id: str, owned_by: str) -> APIRouter:
    """Routes that answer while a completion runs: llama.cpp's own /v1/models takes
    the model's lock, so a listing would wait for the whole completion."""
    router = APIRouter()
    card = {"id": model_id, "object": "model", "owned_by": owned_by, "provider": PROVIDER}

    @router.get("/health")
    async def health() -> dict:
        return {"status": "ok", "version": VERSION}

    @router.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [card]}

    return router


def _answer_validation_errors_as_422() -> None:
    """llama.cpp's route wrapper turns every exception into a 500, FastAPI's request
    validation error included; re-raised, it reaches FastAPI's own 422 answer, which the
    envelope makes `malformed` with the offending fields named."""
    wrap = RouteErrorHandler.error_message_wrapper

    def error_message_wrapper(
        self: RouteErrorHandler, error: Exception, body: object = None
    ) -> tuple[int, ErrorResponse]:
        if isinstance(error, RequestValidationError):
            raise error
        return wrap(self, error, body)

    RouteErrorHandler.error_message_wrapper = error_message_wrapper


def create_app(settings: LlamaCppSettings) -> FastAPI:
    """Load the model (a few seconds) and build the app around it."""
    model: Path = settings.llamacpp_model or bundled_gguf()
    log.info("loading %s as %r", model, settings.llamacpp_model_alias)
    # A request waiting for the model must not cut the running one short: the edge's
    # GPU slot already serialises requests, and a direct caller expects its answer.
    llama_server.set_server_settings(ServerSettings(interrupt_requests=False))
    _answer_validation_errors_as_422()
    began = time.perf_counter()
    llama_server.set_llama_proxy(
        [
            ModelSettings(
                model=str(model),
                model_alias=settings.llamacpp_model_alias,
                n_threads=settings.llamacpp_threads,
                n_threads_batch=settings.llamacpp_threads,
                n_ctx=settings.llamacpp_ctx,
                verbose=False,
            )
        ]
    )
    MODEL_LOAD.set(time.perf_counter() - began)
    owned_by = "llama.cpp" if settings.llamacpp_model else "HuggingFaceTB"
    app = FastAPI(title="aistack llm-llamacpp", version=VERSION)
    app.include_router(_own_routes(settings.llamacpp_model_alias, owned_by))
    app.include_router(telemetry_routes)
    app.include_router(job_routes)
    exit_when_stuck(JOBS, settings)
    app.include_router(llama_server.router)
    stop_cancelled_evaluation()
    count_generated_tokens()
    app.add_middleware(UsageMiddleware)
    app.add_middleware(JobMiddleware)
    app.add_middleware(EnvelopeMiddleware)
    app.add_middleware(TelemetryMiddleware)  # outermost: it sees the envelope's statuses
    return app
