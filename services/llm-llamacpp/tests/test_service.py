"""llm-llamacpp as a real process: llama.cpp's server with the bundled SmolLM2."""

import asyncio
import json
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aistack_testing.processes import Service, free_port, start_service

# SmolLM2's end tokens banned: the completion runs to max_tokens.
ENDLESS = {"0": -100, "1": -100, "2": -100}


def endless_stream(max_tokens: int, prompt: str = "Tell me a long story.") -> dict:
    """A streamed chat request that generates exactly `max_tokens` tokens."""
    return {
        "model": "smollm2",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "stream": True,
        "logit_bias": ENDLESS,
    }


def start_llm(folder: Path) -> Service:
    """The service, writing its spans to `service.spans`."""
    port = free_port()
    service = start_service(
        ["-m", "aistack_llm_llamacpp", "--port", str(port)],
        port,
        folder / "llm.log",
        env={"AISTACK_TRACE_FILE": str(folder / "spans.jsonl")},
        timeout=120,
    )
    service.spans = folder / "spans.jsonl"
    return service


@pytest.fixture(scope="module")
def llm(tmp_path_factory) -> Service:
    service = start_llm(tmp_path_factory.mktemp("llm"))
    yield service
    service.stop()


@pytest.fixture
def fresh_llm(tmp_path) -> Service:
    """A service of its own: no other test's request ends while this one counts."""
    service = start_llm(tmp_path)
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
            "data": [
                {
                    "id": "smollm2",
                    "object": "model",
                    "owned_by": "HuggingFaceTB",
                    "provider": "llama.cpp",
                }
            ],
        }


async def test_models_answer_while_a_completion_runs(llm):
    body = endless_stream(400)
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
    body = endless_stream(1500)
    async with aiohttp.ClientSession() as session:
        response = await session.post(llm.url + "/v1/chat/completions", json=body)
        await response.content.readline()
        response.close()
    began = time.perf_counter()
    status, _ = await asyncio.wait_for(chat(llm.url, max_tokens=2), timeout=10)
    assert status == 200
    assert time.perf_counter() - began < 2


async def test_a_stopped_job_ends_a_whole_answer(llm):
    """`DELETE /jobs/{id}` on a non-streamed answer: llama.cpp's server would run it to
    its end (1500 tokens: many seconds); the model stops at its next evaluation step,
    and the stop is answered once it has."""
    job = uuid.uuid4().hex
    body = {**endless_stream(1500), "stream": False}
    async with aiohttp.ClientSession() as session:
        answer = asyncio.create_task(
            session.post(llm.url + "/v1/chat/completions", json=body, headers={"X-Request-ID": job})
        )
        await asyncio.sleep(1.0)  # well into the generation
        assert not answer.done()
        began = time.perf_counter()
        async with session.delete(llm.url + f"/jobs/{job}", params={"wait": "10"}) as stop:
            assert stop.status == 200
            assert await stop.json() == {"job": job, "running": False}
        assert time.perf_counter() - began < 8  # the whole answer: tens of seconds here
        response = await asyncio.wait_for(answer, timeout=5)
        assert response.status >= 500  # the answer was cut: no partial completion as whole
        response.close()
    status, _ = await asyncio.wait_for(chat(llm.url, max_tokens=2), timeout=10)
    assert status == 200


async def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    async with aiohttp.request("GET", url + "/metrics") as r:
        assert r.status == 200 and r.content_type == "text/plain"
        text = await r.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_count_requests_and_tokens(fresh_llm):
    llm = fresh_llm
    before = await scrape(llm.url)
    status, answer = await chat(llm.url, max_tokens=4, logit_bias=ENDLESS)
    assert status == 200 and answer["usage"]["completion_tokens"] == 4
    body = endless_stream(5, "Hi!")
    async with aiohttp.request("POST", llm.url + "/v1/chat/completions", json=body) as r:
        assert r.status == 200
        await r.read()
    assert (await chat(llm.url, temperature="hot"))[0] == 400
    after = await scrape(llm.url)

    def grew(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return after.get(key, 0.0) - before.get(key, 0.0)

    route = "/v1/chat/completions"
    assert grew("aistack_llm_llamacpp_requests_total", route=route, status="200") == 2
    assert grew("aistack_llm_llamacpp_requests_total", route=route, status="400") == 1
    assert grew("aistack_llm_llamacpp_tokens_total", kind="completion") == 4 + 5
    prompt = answer["usage"]["prompt_tokens"]
    assert grew("aistack_llm_llamacpp_tokens_total", kind="prompt") == prompt
    assert grew("aistack_llm_llamacpp_first_token_seconds_count") == 1
    assert grew("aistack_llm_llamacpp_request_seconds_count") == 3
    assert after[("aistack_llm_llamacpp_model_load_seconds", frozenset())] > 0


async def test_spans_continue_the_callers_trace(llm):
    trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    headers = {"traceparent": f"00-{trace_id}-{parent}-01"}
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "Hi!"}], "max_tokens": 2}
    async with aiohttp.request(
        "POST", llm.url + "/v1/chat/completions", json=body, headers=headers
    ) as r:
        assert r.status == 200
    deadline = time.monotonic() + 5
    while True:  # the span is written when it ends, just after the answer's last byte
        spans = [json.loads(line) for line in llm.spans.read_text().splitlines()]
        spans = [s for s in spans if s["trace_id"] == trace_id]
        server = [s for s in spans if s["parent_span_id"] == parent]
        if server or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    (server,) = server
    assert server["name"] == "POST /v1/chat/completions"
    assert server["service"] == "aistack-llm-llamacpp"
    assert server["attributes"]["http.response.status_code"] == 200
    endpoint = [s for s in spans if s["name"] == "fastapi.endpoint"]
    assert [s["parent_span_id"] for s in endpoint] == [server["span_id"]]
