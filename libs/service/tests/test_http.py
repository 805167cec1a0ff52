"""The request context on a real aiohttp server: the envelope for every failure, the
request id on every answer."""

import httpx
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from aistack_contract.jobs import Jobs
from aistack_service import http
from aistack_testing.doubles import serving


def _app() -> web.Application:
    requests = Counter("t", "t", ["route", "status"], registry=CollectorRegistry())
    app = http.create_app("Engine", requests, Jobs())

    async def broken(request: web.Request) -> web.Response:
        raise KeyError("/models/secret-path")

    async def oom(request: web.Request) -> web.Response:
        raise RuntimeError("CUDA failed: out of memory")

    app.router.add_post("/broken", broken)
    app.router.add_post("/oom", oom)
    return app


def _error(response: httpx.Response) -> tuple[int, str, str, str]:
    error = response.json()["error"]
    return response.status_code, error["kind"], error["provider"], error["message"]


async def test_an_unexpected_error_names_the_request_not_the_exception() -> None:
    async with serving(_app()) as url, httpx.AsyncClient() as client:
        response = await client.post(url + "/broken", headers={"X-Request-ID": "r-9"})
    assert _error(response) == (
        500,
        "unknown",
        "Engine",
        "internal error in Engine (request r-9); its log has the details",
    )
    assert "KeyError" not in response.text and "secret" not in response.text
    assert response.headers["X-Request-ID"] == "r-9"


async def test_out_of_memory_is_an_overflow() -> None:
    async with serving(_app()) as url, httpx.AsyncClient() as client:
        response = await client.post(url + "/oom")
    assert _error(response) == (413, "overflow", "Engine", "out of memory")
    assert len(response.headers["X-Request-ID"]) == 32


async def test_aiohttp_refusals_keep_their_status_and_say_why() -> None:
    async with serving(_app()) as url, httpx.AsyncClient() as client:
        missing = await client.get(url + "/nope")
        wrong = await client.get(url + "/broken")
    assert _error(missing) == (404, "malformed", "Engine", "no such route: GET /nope")
    assert _error(wrong) == (
        405,
        "malformed",
        "Engine",
        "GET is not allowed on /broken (allowed: POST)",
    )
