"""llm-llamacpp as a real process: llama.cpp's server with the bundled SmolLM2."""

import asyncio
import json
import time

import aiohttp
import pytest

from aistack_testing.processes import Service, free_port, start_service

# SmolLM2's end tokens banned: the completion runs to max_tokens.
ENDLESS = {"0": -100, "1": -100, "2": -100}


@pytest.fixture(scope="module")
def llm(tmp_path_factory) -> Service:
    port = free_port()
    log = tmp_path_factory.mktemp("llm") / "llm.log"
    service = start_service(
        ["-m", "aistack_llm_llamacpp", "--port", str(port)], port, log, timeout=120
    )
    yield service
    service.stop()


async def chat(url: str, **body) -> tuple[int, dict]:
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "Hi!"}], **body}
    async with aiohttp.request("POST", url + "/v1/chat/completions", json=body) as r:
        return r.status, await r.json()


async def test_health_and_models(llm):
    async with aiohttp.request("GET", llm.url + "/health") as r:
        assert await r.json() == {"status": "ok", "version": "0.0.1"}
    async with aiohttp.request("GET", llm.url + "/v1/models") as r:
        assert await r.json() == {
            "object": "list",
            "data": [{"id": "smollm2", "object": "model", "owned_by": "HuggingFaceTB"}],
        }


async def test_models_answer_while_a_completion_runs(llm):
    body = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": "Tell me a long story."}],
        "max_tokens": 400,
        "stream": True,
        "logit_bias": ENDLESS,
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(llm.url + "/v1/chat/completions", json=body) as stream,
    ):
        await stream.content.readline()  # generating
        began = time.perf_counter()
        async with session.get(llm.url + "/v1/models") as r:
            assert r.status == 200
        assert time.perf_counter() - began < 0.5


async def test_completion(llm):
    status, answer = await chat(llm.url, max_tokens=8)
    assert status == 200
    assert answer["choices"][0]["message"]["content"]
    assert answer["usage"]["completion_tokens"] <= 8


@pytest.mark.parametrize(
    ("body", "status", "kind", "part"),
    [
        ({"temperature": "hot"}, 400, "malformed", "temperature"),
        ({"messages": "Hi"}, 400, "malformed", "messages"),
        ({"messages": [{"role": "user", "content": "dragon " * 3000}]}, 413, "overflow", "context"),
    ],
)
async def test_errors_are_envelopes(llm, body, status, kind, part):
    got, answer = await chat(llm.url, **body)
    assert got == status
    assert answer["error"]["kind"] == kind and answer["error"]["provider"] == "llama.cpp"
    assert part in answer["error"]["message"]


async def test_unknown_route_is_an_envelope(llm):
    async with aiohttp.request("GET", llm.url + "/v2/nothing") as r:
        assert r.status == 400
        assert json.loads(await r.read())["error"]["kind"] == "malformed"


async def test_hang_up_stops_generation(llm):
    """After a hang-up the model is free for the next request within a token or two."""
    body = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": "Tell me a long story."}],
        "max_tokens": 1500,
        "stream": True,
        "logit_bias": ENDLESS,
    }
    async with aiohttp.ClientSession() as session:
        response = await session.post(llm.url + "/v1/chat/completions", json=body)
        await response.content.readline()
        response.close()
    began = time.perf_counter()
    status, _ = await asyncio.wait_for(chat(llm.url, max_tokens=2), timeout=10)
    assert status == 200
    assert time.perf_counter() - began < 2
