"""/v1/chat/completions end to end: the official openai client, a real edge, and the
embedded llama.cpp server with SmolLM2-135M generating every token.

Ollama cannot run here; `aistack_testing.ollama.FakeOllama`, written from Ollama's source,
answers its native API and hands its OpenAI-compatible `/v1/chat/completions` to the real
llama.cpp server."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import openai
import pytest
from aiohttp import web

from aistack_testing.asr_protocol import wait_until
from aistack_testing.audio import silence
from aistack_testing.edge import envelope, never_reading, until_free, until_held
from aistack_testing.ollama import FOREVER, FakeOllama
from aistack_testing.processes import Service, free_port

MODEL = "smollm2"
# SmolLM2's <|endoftext|>, <|im_start|> and <|im_end|>, banned: the completion then
# runs until max_tokens, long enough to interrupt.
ENDLESS = {"logit_bias": {"0": -100, "1": -100, "2": -100}}
HELLO = [{"role": "user", "content": "Say hello."}]
STORY = [{"role": "user", "content": "Tell me a long story about a dragon."}]


@pytest.fixture(scope="module")
def edge(module_services, llm) -> Service:
    return module_services.start("aistack_edge", env={"AISTACK_LLM_UPSTREAMS": llm.url})


def client_of(service: Service) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=service.url + "/v1", api_key="unused", max_retries=0)


@pytest.fixture
async def client(edge) -> AsyncIterator[openai.AsyncOpenAI]:
    async with client_of(edge) as client:
        yield client


async def post(url: str, body: bytes) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    async with aiohttp.request(
        "POST", url + "/v1/chat/completions", data=body, headers=headers
    ) as r:
        return r.status, await r.read()


class Relay:
    """A real HTTP hop in front of an upstream: records each request body, relays the
    answer as it streams, and can break a stream off after a number of chunks."""

    def __init__(self, upstream: str, break_after: int | None = None) -> None:
        self.upstream = upstream
        self.break_after = break_after
        self.bodies: list[bytes] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self, extra: Callable[[web.Application], None] = lambda app: None) -> None:
        app = web.Application()
        extra(app)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.method == "POST":
            self.bodies.append(body)
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method, self.upstream + request.path_qs, data=body, headers=headers
            ) as upstream,
        ):
            answer = web.StreamResponse(
                status=upstream.status, headers={"Content-Type": upstream.headers["Content-Type"]}
            )
            await answer.prepare(request)
            chunks = 0
            async for chunk in upstream.content.iter_any():
                await answer.write(chunk)
                chunks += 1
                if self.break_after is not None and chunks >= self.break_after:
                    request.transport.close()  # no last chunk: a broken chunked body
                    return answer
            await answer.write_eof()
            return answer


@pytest.fixture
async def relay(llm) -> AsyncIterator[Relay]:
    relay = Relay(llm.url)
    await relay.start()
    yield relay
    await relay.stop()


# --- the happy paths ---------------------------------------------------------------


async def test_models_lists_the_llm(edge):
    async with aiohttp.request("GET", edge.url + "/v1/models") as r:
        cards = (await r.json())["data"]
    assert {
        "id": MODEL,
        "object": "model",
        "owned_by": "HuggingFaceTB",
        "capabilities": ["llm"],
    } in cards


async def test_completion(client):
    raw = await client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=24,
        temperature=0,
    )
    completion = raw.parse()
    assert len(raw.headers["X-Request-ID"]) == 32
    assert completion.model == MODEL
    assert "paris" in completion.choices[0].message.content.lower()
    assert completion.usage.completion_tokens > 0


async def test_streaming_relays_tokens_as_they_come(client):
    began = time.perf_counter()
    arrivals, text, finish = [], "", None
    stream = await client.chat.completions.create(
        model=MODEL, messages=STORY, max_tokens=64, temperature=0, stream=True
    )
    async with stream:
        async for chunk in stream:
            arrivals.append(time.perf_counter() - began)
            choice = chunk.choices[0]
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert len(arrivals) > 30
    assert len(text.split()) > 10
    assert finish == "length"
    # Relayed, not buffered: the first token long before the last.
    assert arrivals[0] < arrivals[-1] / 3


async def prompt_tokens_counted(edge: Service) -> float:
    async with aiohttp.request("GET", edge.url + "/metrics") as r:
        metrics = await r.text()
    line = f'aistack_llm_tokens_total{{kind="prompt",model="{MODEL}"}} '
    found = [row for row in metrics.splitlines() if row.startswith(line)]
    return float(found[0].removeprefix(line)) if found else 0.0


async def test_a_stream_reports_its_usage_when_asked(edge, client):
    """`stream_options.include_usage`, as the openai SDK and LangChain send it: the last
    chunk before [DONE] has no choices and the usage, the same counts as the whole
    answer's; /metrics counts the stream's tokens."""
    asked = {"model": MODEL, "messages": HELLO, "max_tokens": 12, "temperature": 0}
    counted = await prompt_tokens_counted(edge)
    whole = await client.chat.completions.create(**asked)
    stream = await client.chat.completions.create(
        **asked, stream=True, stream_options={"include_usage": True}
    )
    async with stream:
        chunks = [chunk async for chunk in stream]
    *deltas, last = chunks
    assert last.choices == [] and last.usage is not None
    assert all(chunk.usage is None and chunk.choices for chunk in deltas)
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (
        whole.usage.prompt_tokens,
        whole.usage.completion_tokens,
    )
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert await prompt_tokens_counted(edge) == counted + 2 * whole.usage.prompt_tokens
    # Not asked: no usage chunk, as OpenAI.
    stream = await client.chat.completions.create(**asked, stream=True)
    async with stream:
        plain = [chunk async for chunk in stream]
    assert all(chunk.choices and chunk.usage is None for chunk in plain)


async def llm_holds_the_slot(edge: Service) -> bool:
    """Whether the edge's aistack_slot_holder gauge says a chat holds the slot."""
    async with aiohttp.request("GET", edge.url + "/metrics") as r:
        page = await r.text()
    held = [
        float(line.rsplit(" ", 1)[1])
        for line in page.splitlines()
        if line.startswith("aistack_slot_holder{") and 'capability="llm"' in line
    ]
    return any(held)


async def test_hanging_up_stops_the_upstream_and_frees_the_slot(edge, client):
    """1500 tokens would take the CPU many seconds; after the hang-up the slot is freed
    (waited on, not timed) and the next request gets it and the model at the first try."""
    stream = await client.chat.completions.create(
        model=MODEL, messages=STORY, max_tokens=1500, stream=True, extra_body=ENDLESS
    )
    async with stream:
        received = 0
        async for _ in stream:
            received += 1
            if received == 5:
                break
    await wait_until(lambda: not_(llm_holds_the_slot(edge)), 60)
    completion = await client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=4)
    assert completion.usage.completion_tokens > 0


async def not_(held: Awaitable[bool]) -> bool:
    return not await held


async def test_busy_slot_is_a_503_with_retry_after(edge, client):
    stream = await client.chat.completions.create(
        model=MODEL, messages=STORY, max_tokens=1500, stream=True, extra_body=ENDLESS
    )
    async with stream:
        await anext(aiter(stream))
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=4)
    error = caught.value
    assert error.status_code == 503
    assert error.response.headers["Retry-After"] == "5"
    assert error.body["kind"] == "network" and error.body["provider"] == "aistack"
    assert "busy" in error.body["message"] and MODEL in error.body["message"]
    # The hang-up above stops the upstream: the next test starts once the slot is free.
    await wait_until(lambda: not_(llm_holds_the_slot(edge)), 60)


async def test_max_completion_tokens_limits_the_answer(client):
    """The newer SDK's limit: llama.cpp's server ignores it (asked for 6, it wrote 501);
    the edge sends it as `max_tokens` too."""
    for stream in (False, True):
        answer = await client.chat.completions.create(
            model=MODEL,
            messages=STORY,
            max_completion_tokens=6,
            extra_body=ENDLESS,
            stream=stream,
            **({"stream_options": {"include_usage": True}} if stream else {}),
        )
        if stream:
            chunks = [chunk async for chunk in answer]
            usage = chunks[-1].usage
            assert chunks[-2].choices[0].finish_reason == "length"
        else:
            usage = answer.usage
            assert answer.choices[0].finish_reason == "length"
        assert usage.completion_tokens == 6, stream


async def test_max_completion_tokens_is_sent_as_max_tokens(services, relay):
    edge = services.start("aistack_edge", env={"AISTACK_LLM_UPSTREAMS": relay.url})
    sent = {"model": MODEL, "messages": HELLO, "max_completion_tokens": 3}
    status, _ = await post(edge.url, json.dumps(sent).encode())
    assert status == 200
    assert json.loads(relay.bodies[-1]) == {**sent, "max_tokens": 3}


# --- keep_alive, seen by the upstream ---------------------------------------------------


async def test_the_body_passes_unchanged(services, relay):
    edge = services.start("aistack_edge", env={"AISTACK_LLM_UPSTREAMS": relay.url})
    sent = (
        b' {"model":"smollm2",  "messages": [{"role":"user","content":"Hi \\u00e9"}],'
        b'\n"max_tokens": 3}'
    )
    status, answer = await post(edge.url, sent)
    assert status == 200 and json.loads(answer)["choices"][0]["message"]["content"]
    assert relay.bodies == [sent]


# --- failures -------------------------------------------------------------------------


async def test_upstream_broken_mid_stream_ends_with_an_error_event(services, llm):
    relay = Relay(llm.url, break_after=4)
    await relay.start()
    try:
        edge = services.start("aistack_edge", env={"AISTACK_LLM_UPSTREAMS": relay.url})
        async with client_of(edge) as client:
            stream = await client.chat.completions.create(
                model=MODEL, messages=STORY, max_tokens=200, stream=True, extra_body=ENDLESS
            )
            chunks = 0
            with pytest.raises(openai.APIError) as caught:
                async for _ in stream:
                    chunks += 1
    finally:
        await relay.stop()
    assert chunks >= 1
    assert caught.value.body["kind"] == "network" and caught.value.body["provider"] == "llama.cpp"
    assert "broke off" in caught.value.body["message"]


@pytest.mark.parametrize("provider", [None, "vLLM"])
async def test_upstream_down_is_a_503_naming_it(services, provider):
    env = {"AISTACK_LLM_UPSTREAMS": f"http://127.0.0.1:{free_port()}"}
    if provider:
        env["AISTACK_LLM_PROVIDER"] = provider
    edge = services.start("aistack_edge", env=env)
    status, body = await post(edge.url, json.dumps({"model": MODEL, "messages": HELLO}).encode())
    assert status == 503
    error = envelope(body, "network")
    assert error["provider"] == (provider or "llama.cpp") and "not answering" in error["message"]


async def test_upstream_gone_after_listing_is_a_503(services, relay):
    edge = services.start(
        "aistack_edge",
        env={"AISTACK_LLM_UPSTREAMS": relay.url, "AISTACK_MODELS_CACHE_S": "60"},
    )
    async with aiohttp.request("GET", edge.url + "/v1/models") as r:
        assert MODEL in {card["id"] for card in (await r.json())["data"]}
    await relay.stop()
    status, body = await post(edge.url, json.dumps({"model": MODEL, "messages": HELLO}).encode())
    assert status == 503
    error = envelope(body, "network")
    assert error["provider"] == "llama.cpp" and relay.url in error["message"]


async def test_no_llm_configured_is_a_503(services):
    edge = services.start("aistack_edge")
    status, body = await post(edge.url, json.dumps({"model": MODEL, "messages": HELLO}).encode())
    assert status == 503
    assert envelope(body, "network")["provider"] == "aistack"


@pytest.mark.parametrize(
    ("body", "message_part"),
    [
        (b"{not json", "JSON"),
        (b"\xff\xfe", "JSON"),
        (b'["smollm2"]', "object"),
        (b'{"messages": [{"role": "user", "content": "Hi"}]}', "model"),
        (b'{"model": 7, "messages": [{"role": "user", "content": "Hi"}]}', "model"),
        (b'{"model": "smollm2"}', "messages"),
        (b'{"model": "smollm2", "messages": []}', "messages"),
        (b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}', "smollm2"),
        (b'{"model": "smollm2", "messages": [1], "max_completion_tokens": 0}', "max_completion"),
    ],
)
async def test_bad_requests_are_malformed(edge, body, message_part):
    status, answer = await post(edge.url, body)
    assert status == 400
    error = envelope(answer, "malformed")
    assert error["provider"] == "aistack" and message_part in error["message"]


async def test_upstream_refusal_keeps_its_message(client):
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model=MODEL, messages=HELLO, extra_body={"temperature": "hot"}
        )
    assert caught.value.body["kind"] == "malformed"
    assert caught.value.body["provider"] == "llama.cpp"
    assert "temperature" in caught.value.body["message"]


async def test_too_long_a_prompt_is_an_overflow(client):
    long_text = "dragon " * 3000  # more tokens than the 2048 of the context
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": long_text}], max_tokens=8
        )
    assert caught.value.status_code == 413
    assert caught.value.body["kind"] == "overflow" and caught.value.body["provider"] == "llama.cpp"
    assert "context" in caught.value.body["message"]


# --- Ollama, as its source describes it --------------------------------------------------


OLLAMA_TAG = "smollm2:135m"


@pytest.fixture
async def ollama(llm) -> AsyncIterator[FakeOllama]:
    """The fake written from Ollama's source (aistack_testing.ollama), its chats answered
    by the real llama.cpp server."""
    async with FakeOllama([OLLAMA_TAG], upstream=llm.url) as fake:
        yield fake


def left(ollama: FakeOllama) -> float:
    """How long Ollama keeps the model loaded from now."""
    return ollama.loaded[OLLAMA_TAG] - time.time()


async def test_ollama_models_join_the_list_and_serve_chat(services, llm, ollama):
    edge = services.start(
        "aistack_edge",
        env={"AISTACK_LLM_UPSTREAMS": llm.url, "AISTACK_OLLAMA_URL": ollama.url + "/"},
    )
    async with aiohttp.request("GET", edge.url + "/v1/models") as r:
        cards = {card["id"]: card for card in (await r.json())["data"]}
    assert cards[OLLAMA_TAG] == {
        "id": OLLAMA_TAG,
        "object": "model",
        "owned_by": "ollama",
        "capabilities": ["llm"],
    }
    assert MODEL in cards
    async with client_of(edge) as client:
        completion = await client.chat.completions.create(
            model=OLLAMA_TAG, messages=HELLO, max_tokens=4
        )
    assert completion.choices[0].message.content
    assert [json.loads(body)["model"] for body in ollama.bodies] == [OLLAMA_TAG]


async def test_ollama_keeps_its_model_as_long_as_keep_alive_says(services, llm, ollama):
    """The default AISTACK_LLM_KEEP_ALIVE, then a request's own `keep_alive` in each form
    Ollama reads, set through Ollama's native API (its OpenAI-compatible endpoint ignores
    the field and keeps the model for its own default, five minutes)."""
    edge = services.start(
        "aistack_edge",
        env={"AISTACK_LLM_UPSTREAMS": llm.url, "AISTACK_OLLAMA_URL": ollama.url},
    )
    async with client_of(edge) as client:
        await client.chat.completions.create(model=OLLAMA_TAG, messages=HELLO, max_tokens=3)
        assert left(ollama) == pytest.approx(30, abs=5)
        for keep_alive, seconds in [("10m", 600), ("1h30m", 5400), (-1, FOREVER)]:
            await client.chat.completions.create(
                model=OLLAMA_TAG, messages=HELLO, max_tokens=3,
                extra_body={"keep_alive": keep_alive},
            )  # fmt: skip
            assert left(ollama) == pytest.approx(seconds, abs=5), keep_alive
        stream = await client.chat.completions.create(
            model=OLLAMA_TAG, messages=HELLO, max_tokens=3, stream=True,
            extra_body={"keep_alive": 45},
        )  # fmt: skip
        async for _ in stream:
            pass
        # The timer is set once the relayed stream has ended: just after its last byte.
        await wait_until(lambda: asyncio.sleep(0, left(ollama) < 60), 30)
        assert left(ollama) == pytest.approx(45, abs=5)
    assert ollama.loads == 1  # one cold load; every later chat found the model loaded


async def test_ollama_down_is_a_503_from_ollama(services, llm):
    edge = services.start(
        "aistack_edge",
        env={
            "AISTACK_LLM_UPSTREAMS": llm.url,
            "AISTACK_OLLAMA_URL": f"http://127.0.0.1:{free_port()}",
        },
    )
    status, body = await post(
        edge.url, json.dumps({"model": "qwen3:4b", "messages": HELLO}).encode()
    )
    assert status == 503
    assert envelope(body, "network")["provider"] == "Ollama"


# --- hot-swap: a chat makes the ASR backends drop their idle models -------------------------


@pytest.fixture(scope="module")
def asr_whisper(module_services) -> Service:
    return module_services.start("aistack_asr_whisper", timeout=120)


async def whisper_loaded(whisper: Service) -> bool:
    async with aiohttp.request("GET", whisper.url + "/info") as r:
        return any(card["loaded"] for card in (await r.json())["data"])


async def load_whisper(whisper: Service, silence_wav: bytes) -> None:
    form = aiohttp.FormData()
    form.add_field("options", json.dumps({"model": "whisper-tiny.en"}))
    form.add_field("file", silence_wav, filename="silence.wav")
    async with aiohttp.request("POST", whisper.url + "/transcribe", data=form) as r:
        assert r.status == 200
        await r.read()
    assert await whisper_loaded(whisper)


@pytest.fixture(scope="module")
def silence_wav() -> bytes:
    """A second of silence: transcribing it only loads the model."""
    return silence(1.0)


@pytest.mark.parametrize(("policy", "evicted"), [("exclusive", True), ("shared", False)])
async def test_chat_makes_asr_leave_the_gpu(
    services, llm, asr_whisper, silence_wav, policy, evicted
):
    edge = services.start(
        "aistack_edge",
        env={
            "AISTACK_LLM_UPSTREAMS": llm.url,
            "AISTACK_ASR_BACKENDS": asr_whisper.url,
            "AISTACK_SWAP_POLICY": policy,
        },
    )
    await load_whisper(asr_whisper, silence_wav)
    async with client_of(edge) as client:
        await client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=2)
    assert await whisper_loaded(asr_whisper) is not evicted


# --- a client that stops reading ---------------------------------------------------------


async def test_a_client_that_never_reads_does_not_hold_the_slot(services, llm, redis_server):
    """A long stream (700 tokens, some 170 kB of events) to a client that reads none of
    it: the edge reads llama.cpp's events at its pace into its outbox, so the slot is
    free once the completion has ended. On the old relay, which wrote at the client's
    pace, the slot stayed held."""
    key = "aistack:test-chat-never-read"
    edge = services.start(
        "aistack_edge",
        env={
            "AISTACK_LLM_UPSTREAMS": llm.url,
            "AISTACK_REDIS_URL": redis_server.url,
            "AISTACK_SLOT_KEY": key,
            "AISTACK_CLIENT_WRITE_TIMEOUT_S": "600",
        },
    )
    chat = {"model": MODEL, "messages": STORY, "max_tokens": 700, "stream": True, **ENDLESS}
    with never_reading(edge.url, "/v1/chat/completions", json.dumps(chat).encode()):
        assert MODEL in await until_held(redis_server.url, key)
        # However long the CPU takes for 700 tokens (minutes on a loaded test machine)
        await until_free(redis_server.url, key, limit_s=900)
    async with client_of(edge) as client:
        completion = await client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=4)
    assert completion.usage.completion_tokens > 0
