"""The fake Ollama (aistack_testing.ollama) does what Ollama's source does, where the
gateway depends on it: keep_alive in every form api.Duration reads, an unload answered
before the runner is gone, a cold load's delay, and Ollama's error bodies."""

import math
import time

import aiohttp
import pytest

from aistack_testing.asr_protocol import wait_until
from aistack_testing.ollama import FOREVER, FakeOllama, keep_alive_seconds


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0),
        (30, 30),
        (2.5, 2.5),
        (-1, FOREVER),
        ("-1s", FOREVER),
        ("0", 0),
        ("0s", 0),
        ("10m", 600),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("250ms", 0.25),
        ("2h45m30.5s", 9930.5),
    ],
)
def test_keep_alive_is_read_as_ollama_reads_it(value, seconds):
    assert keep_alive_seconds(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["", "5", "-1", "1d", "h", "1h 30m", True, None, [5], {"s": 1}])
def test_keep_alive_that_ollama_refuses(value):
    with pytest.raises(ValueError):
        keep_alive_seconds(value)


async def post(url: str, body: object) -> tuple[int, dict]:
    async with aiohttp.request("POST", url, json=body) as r:
        return r.status, await r.json()


async def ps(url: str) -> list[dict]:
    async with aiohttp.request("GET", url + "/api/ps") as r:
        return (await r.json())["models"]


async def gone(url: str) -> bool:
    return not await ps(url)


async def test_an_unload_is_answered_before_the_runner_is_gone():
    async with FakeOllama(["qwen3:4b"], unload_s=0.5) as ollama:
        ollama.loaded["qwen3:4b"] = FOREVER
        status, answer = await post(
            ollama.url + "/api/generate", {"model": "qwen3:4b", "keep_alive": 0}
        )
        assert (status, answer["done"], answer["done_reason"]) == (200, True, "unload")
        still = await ps(ollama.url)  # the expiry loop has not torn it down yet
        assert [m["name"] for m in still] == ["qwen3:4b"]
        await wait_until(lambda: gone(ollama.url), 10)
        assert ollama.unloads == [{"model": "qwen3:4b", "keep_alive": 0}]


@pytest.mark.parametrize(("keep_alive", "left"), [("1h30m", 5400), (45, 45), (None, 300)])
async def test_a_load_sets_the_timer_from_keep_alive(keep_alive, left):
    async with FakeOllama(["qwen3:4b"], load_s=0.3) as ollama:
        body = {"model": "qwen3:4b"} | ({} if keep_alive is None else {"keep_alive": keep_alive})
        status, answer = await post(ollama.url + "/api/generate", body)
        assert (status, answer["done_reason"]) == (200, "load")
        assert ollama.loads == 1
        assert ollama.loaded["qwen3:4b"] - time.time() == pytest.approx(left, abs=5)
        await post(ollama.url + "/api/generate", body)
        assert ollama.loads == 1  # loaded already: no second cold load


async def test_forever_is_listed_far_ahead():
    async with FakeOllama(["a:1b", "b:1b"]) as ollama:
        await post(ollama.url + "/api/generate", {"model": "a:1b", "keep_alive": "5m"})
        await post(ollama.url + "/api/chat", {"model": "b:1b", "keep_alive": -1})
        assert ollama.loaded["b:1b"] == math.inf
        assert [m["name"] for m in await ps(ollama.url)] == ["b:1b", "a:1b"]  # longest first


async def test_errors_are_ollamas():
    async with FakeOllama(["qwen3:4b"]) as ollama:
        assert await post(ollama.url + "/api/generate", {"model": "nope:1b"}) == (
            404,
            {"error": "model 'nope:1b' not found"},
        )
        soon = {"model": "qwen3:4b", "keep_alive": "soon"}
        status, answer = await post(ollama.url + "/api/generate", soon)
        assert (status, answer) == (400, {"error": 'time: invalid duration "soon"'})
        status, answer = await post(
            ollama.url + "/v1/chat/completions", {"model": "nope:1b", "messages": []}
        )
        assert status == 404
        message = "model 'nope:1b' not found"
        error = {"message": message, "type": "not_found_error", "param": None, "code": None}
        assert answer == {"error": error}
        async with aiohttp.request("GET", ollama.url + "/api/nothing") as r:
            assert r.status == 404
