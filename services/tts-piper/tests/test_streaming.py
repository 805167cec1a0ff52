"""The audio leaves sentence by sentence, and a hang-up stops the synthesis."""

import time

import httpx
import openai

from aistack_testing.processes import Service

LONG = " ".join(
    f"This is sentence number {n}, and it carries a handful of further words to speak."
    for n in range(1, 9)
)


def test_first_bytes_arrive_well_before_the_end(client: openai.OpenAI) -> None:
    start = time.monotonic()
    arrivals: list[float] = []
    with client.audio.speech.with_streaming_response.create(
        model="piper", voice="alloy", input=LONG, response_format="pcm"
    ) as response:
        for chunk in response.iter_bytes():
            if chunk:
                arrivals.append(time.monotonic() - start)
    first, total = arrivals[0], arrivals[-1]
    assert len(arrivals) >= 4
    assert first < total / 3, (first, total)


def test_hang_up_stops_synthesis(piper: Service) -> None:
    body = {"model": "piper", "voice": "alloy", "input": LONG * 3, "response_format": "wav"}
    with (
        httpx.Client(base_url=piper.url, timeout=30) as http,
        http.stream("POST", "/v1/audio/speech", json=body) as response,
    ):
        assert response.status_code == 200
        next(response.iter_bytes())
    deadline = time.monotonic() + 10
    while "synthesis stopped" not in piper.output():
        assert time.monotonic() < deadline, piper.output()
        time.sleep(0.05)
    start = time.monotonic()
    assert httpx.get(piper.url + "/health").status_code == 200
    assert time.monotonic() - start < 1.0
