"""What the gateway records is what the client got: a whole answer whose client closes
its connection right after the last byte is a 2xx, not a hang-up; a busy slot is
`busy` and an upstream that is down `upstream_down`, beside the envelope's kind. Through
a real edge in front of the whole CPU stack."""

import httpx
import pytest

from aistack_testing.asr_protocol import wait_until

SPEECH = {"model": "piper", "input": "Counted as given.", "voice": "alloy"}
LONG = {"model": "piper", "input": "A long answer to hold the slot. " * 40, "voice": "alloy"}
CHAT = {"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4,
        "stream": True}  # fmt: skip


@pytest.fixture(scope="module")
def edge(module_services, cpu_stack_env):
    return module_services.start("aistack_edge", env=cpu_stack_env)


def outcomes(edge_url: str) -> dict[str, float]:
    """aistack_requests_total by outcome, summed over capability and model."""
    totals: dict[str, float] = {}
    for line in httpx.get(edge_url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("aistack_requests_total{"):
            labels, _, value = line.rpartition(" ")
            outcome = labels.split('outcome="')[1].split('"')[0]
            totals[outcome] = totals.get(outcome, 0.0) + float(value)
    return totals


def glance_errors(edge_url: str) -> dict[str, int]:
    return httpx.get(edge_url + "/admin/api/status", timeout=10).json()["glance"]["errors"]


async def test_a_whole_answer_closed_at_once_is_a_2xx(edge, speech_wav):
    """curl's way: read every byte, close the connection (no keep-alive), at once."""
    wav = speech_wav.read_bytes()
    counted = outcomes(edge.url)
    before, sent = sum(counted.values()), 0
    fresh = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=edge.url, timeout=60, limits=fresh) as client:
        for _ in range(10):
            for fmt in ("wav", "mp3", "pcm"):
                body = SPEECH | {"response_format": fmt}
                answer = await client.post("/v1/audio/speech", json=body)
                assert answer.status_code == 200 and answer.content
                sent += 1
            answer = await client.post("/v1/chat/completions", json=CHAT)
            assert answer.status_code == 200 and answer.text.rstrip().endswith("[DONE]")
            answer = await client.post(
                "/v1/audio/transcriptions",
                files={"file": ("a.wav", wav)},
                data={"model": "whisper-tiny.en", "stream": "true"},
            )
            assert answer.status_code == 200 and "transcript.text.done" in answer.text
            sent += 2

    async def all_counted() -> bool:  # each once its exchange has ended on the edge
        return sum(outcomes(edge.url).values()) >= before + sent

    await wait_until(all_counted, 30)
    assert outcomes(edge.url).get("disconnect", 0.0) == counted.get("disconnect", 0.0)
    recent = httpx.get(edge.url + "/admin/api/status", timeout=10).json()["recent"]
    assert all(r["status"] == 200 and r["outcome"] == "2xx" for r in recent[:20]), recent[:20]


async def test_busy_and_upstream_down_are_told_apart(edge):
    async with (
        httpx.AsyncClient(base_url=edge.url, timeout=60) as client,
        client.stream("POST", "/v1/audio/speech", json=LONG) as holding,
    ):
        assert holding.status_code == 200
        refused = await client.post("/v1/audio/speech", json=SPEECH)
        assert refused.status_code == 503
        assert refused.json()["error"]["kind"] == "network"  # the contract's kind
        await holding.aread()
    errors = glance_errors(edge.url)
    assert errors.get("busy", 0) >= 1, errors
    assert "network" not in errors, errors
