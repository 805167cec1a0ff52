"""Live transcription (the Realtime API over WebSocket) against the same audio posted to
/v1/audio/transcriptions, in the same run.

    python bench/realtime.py [--runs 10]

It makes a 3 s utterance with Piper, starts asr-whisper (bundled tiny.en) and an edge in
front of it (embedded slot), and measures, alternating the paths run by run:

- floor: the utterance as a 24 kHz WAV (the very file a session sends the backend)
  POSTed to /v1/audio/transcriptions, from the request to the whole answer;
- commit: a session with turn detection off is sent the utterance (not paced), then
  `input_audio_buffer.commit`; from the commit to `...transcription.completed`;
- server VAD: a session is sent the utterance at real-time pace in 40 ms chunks, then
  silence; from `input_audio_buffer.speech_stopped` to `completed` (the VAD itself
  waits `silence_duration_ms`, 500 ms, after the last word before it says so);
- 4 sessions at once, server VAD, speaking the utterance together: the same figure for
  each; their utterances wait in line for the one slot.

p50 and p95 of each (goal: commit and server VAD within 1.2 of the floor).
"""

import argparse
import asyncio
import base64
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import openai
from harness import percentile, started

from aistack_edge.realtime.audio import wav as to_wav
from aistack_testing.audio import pcm
from aistack_testing.speech import speak

UTTERANCE = "Please send the weekly report to the whole team before noon."
UTTERANCE_S = 3  # about, as Piper speaks it
RATE = 24_000
CHUNK_MS = 40
COMPLETED = "conversation.item.input_audio_transcription.completed"


def floor(http: httpx.Client, edge: str, wav: bytes) -> float:
    began = time.perf_counter()
    answer = http.post(
        edge + "/v1/audio/transcriptions",
        files={"file": ("utterance.wav", wav)},
        data={"model": "auto"},
    )
    answer.raise_for_status()
    return time.perf_counter() - began


async def _session(edge: str, turn_detection: dict | None) -> Any:
    client = openai.AsyncOpenAI(base_url=edge + "/v1", api_key="unused")
    conn = await client.realtime.connect(extra_query={"intent": "transcription"}).enter()
    await conn.recv()  # session.created
    session = {"type": "transcription", "audio": {"input": {"turn_detection": turn_detection}}}
    await conn.send({"type": "session.update", "session": session})
    await conn.recv()  # session.updated
    return conn


async def _append(conn: Any, audio: bytes, paced: bool) -> None:
    step = RATE * 2 * CHUNK_MS // 1000
    began = time.monotonic()
    for n, at in enumerate(range(0, len(audio), step)):
        piece = base64.b64encode(audio[at : at + step]).decode()
        # The event as JSON text, past the SDK's typed `send`, whose checking of every
        # event costs the client more CPU than the edge spends on it (on the same cores).
        await conn.send_raw(json.dumps({"type": "input_audio_buffer.append", "audio": piece}))
        if paced:
            await asyncio.sleep(max(0.0, began + (n + 1) * CHUNK_MS / 1000 - time.monotonic()))


async def commit(edge: str, audio: bytes) -> float:
    conn = await _session(edge, None)
    try:
        await _append(conn, audio, paced=False)
        began = time.perf_counter()
        await conn.send({"type": "input_audio_buffer.commit"})
        while (await conn.recv()).type != COMPLETED:
            pass
        return time.perf_counter() - began
    finally:
        await conn.close()


async def server_vad(edge: str, audio: bytes, sessions: int = 1) -> list[float]:
    """From each session's `speech_stopped` to its `completed`."""

    async def one() -> float:
        conn = await _session(edge, {"type": "server_vad"})
        try:
            talk = asyncio.create_task(_append(conn, b"\0\0" * (RATE // 4) + audio + silence, True))
            stopped = None
            while (event := await conn.recv()).type != COMPLETED:
                if event.type == "input_audio_buffer.speech_stopped":
                    stopped = time.perf_counter()
            assert stopped is not None, "no speech_stopped before completed"
            await talk
            return time.perf_counter() - stopped
        finally:
            await conn.close()

    silence = b"\0\0" * RATE
    return list(await asyncio.gather(*(one() for _ in range(sessions))))


def spread(seconds: list[float]) -> dict[str, float]:
    return {
        "p50_s": statistics.median(seconds),
        "p95_s": percentile(seconds, 95),
        "n": len(seconds),
    }


def run(runs: int, work: Path) -> dict:
    audio = pcm(speak(UTTERANCE, work / "utterance.wav"), RATE)
    wav = to_wav(audio, RATE)
    times: dict[str, list[float]] = {"floor": [], "commit": [], "server_vad": [], "four": []}
    with (
        started("aistack_asr_whisper", {}, work) as backend,
        started("aistack_edge", {"AISTACK_ASR_BACKENDS": backend.url}, work) as edge,
        httpx.Client(timeout=None) as http,
    ):
        for _ in range(2):  # warm up both paths: model load, first use
            floor(http, edge.url, wav)
            asyncio.run(commit(edge.url, audio))
        for _ in range(runs):  # alternate, so that every path sees the same machine
            times["floor"].append(floor(http, edge.url, wav))
            times["commit"].append(asyncio.run(commit(edge.url, audio)))
            times["server_vad"] += asyncio.run(server_vad(edge.url, audio))
        for _ in range(max(1, runs // 4)):
            times["four"] += asyncio.run(server_vad(edge.url, audio, sessions=4))
    figures: dict[str, Any] = {"audio_s": len(audio) / 2 / RATE, "runs": runs}
    figures |= {path: spread(seconds) for path, seconds in times.items()}
    for path in ("commit", "server_vad", "four"):
        figures[path]["ratio_p50"] = figures[path]["p50_s"] / figures["floor"]["p50_s"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures = run(args.runs, Path(tempfile.mkdtemp(prefix="bench-realtime-")))
    print(f"utterance: {figures['audio_s']:.2f} s, {figures['runs']} runs")
    for path in ("floor", "commit", "server_vad", "four"):
        f = figures[path]
        ratio = f" ratio p50 {f['ratio_p50']:.2f}" if "ratio_p50" in f else ""
        print(f"{path:>10}: p50 {f['p50_s']:.3f} s  p95 {f['p95_s']:.3f} s  n {f['n']}{ratio}")
    met = all(figures[p]["ratio_p50"] <= 1.2 for p in ("commit", "server_vad"))
    print("goal: commit and server VAD within 1.2 of the floor", "(met)" if met else "(NOT met)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    sys.exit(main())
