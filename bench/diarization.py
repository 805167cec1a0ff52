"""Diarization quality and cost on a conversation corpus made here, end to end.

    .venv-diarize-senko/bin/python bench/diarization.py [--minutes 1 3] [--out FILE]
    .venv-diarize-senko/bin/python bench/diarization.py --memory 1 10 30 [--out FILE]

Run it in diarize-senko's virtualenv (made by services/diarize-senko/test.sh); asr-whisper
runs from the main .venv (tiny.en, bundled). For each conversation of the corpus
(aistack_testing.conversation: 2 to 4 synthetic voices, seeded scripts, with and without
overlaps) it reports:

- DER: the diarization error rate of the diarizer's turns (POST /diarize) against the
  true turns, with the usual 0.25 s collar around each true turn's ends left unscored,
  overlapped speech scored, speakers mapped one to one for the least error;
- SA-WER: the speaker-attributed word error rate of gpt-4o-transcribe-diarize's segments
  (through the edge): each true speaker's words against the words of the label mapped to
  them (the mapping with the fewest errors), errors over the true word count; beside it
  the plain WER of the whole text, so that what the ASR gets wrong is told apart from
  what the attribution does;
- known: with a reference clip per voice, the share of words labelled with the right name;
- the diarizer's real-time factor and the service's peak memory.

`--memory` measures instead what a recording's length costs the diarizer: one
diarize-senko (on CPU) loads its model on a reference clip, then diarizes a two-speaker
conversation of each length, shortest first; its peak resident memory (VmHWM) is read
after each call, so each figure less the one before is what the longer recording added.
(Between two fresh processes the same peak differs by a few hundred MB, so one process
compares the lengths; but its peak also creeps up job by job, tens of MB on recordings of
the same length, which this order counts with the lengths.)

Synthetic voices are much easier than a real meeting: they never change their voice, do
not mumble, and rarely talk over each other for long. Read the figures as a check that
the pipeline works, not as what a meeting recording will give.
"""

import argparse
import base64
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import openai
import requests

from aistack_testing import conversation
from aistack_testing.processes import Service, free_port, start_service
from aistack_testing.speech import words_of

ROOT = Path(__file__).resolve().parents[1]
MAIN_PYTHON = ROOT / ".venv" / "bin" / "python"
COLLAR_S = 0.25
FRAME_S = 0.01
# (speakers, overlaps, seed): the corpus at each length.
CORPUS = [(2, False, 11), (3, True, 12), (4, True, 13)]


def _grid(turns: list[tuple[float, float, str]], frames: int) -> dict[str, np.ndarray]:
    """Per speaker, which frames they speak in."""
    grid: dict[str, np.ndarray] = {}
    for start, end, speaker in turns:
        row = grid.setdefault(speaker, np.zeros(frames, dtype=bool))
        row[int(start / FRAME_S) : int(end / FRAME_S)] = True
    return grid


def der(truth: list[conversation.Turn], found: list[dict], duration: float) -> float:
    """Diarization error rate: (missed + false alarm + confusion) / true speech, in
    10 ms frames, outside a collar of COLLAR_S around each true turn's start and end."""
    frames = int(duration / FRAME_S) + 1
    ref = _grid([(t.start, t.end, t.speaker) for t in truth], frames)
    hyp = _grid([(t["start"], t["end"], t["speaker"]) for t in found], frames)
    scored = np.ones(frames, dtype=bool)
    collar = int(COLLAR_S / FRAME_S)
    for turn in truth:
        for edge in (turn.start, turn.end):
            at = int(edge / FRAME_S)
            scored[max(0, at - collar) : at + collar] = False
    n_ref = sum(ref.values())[scored] if ref else np.zeros(scored.sum())
    n_hyp = sum(hyp.values())[scored] if hyp else np.zeros(scored.sum())
    refs, hyps = list(ref), list(hyp)
    best = None
    for chosen in itertools.permutations(hyps + [None] * len(refs), len(refs)):
        correct = sum(
            (ref[r] & hyp[h])[scored].sum() for r, h in zip(refs, chosen, strict=True) if h
        )
        errors = np.maximum(n_ref, n_hyp).sum() - correct
        best = errors if best is None else min(best, errors)
    return float(best / max(n_ref.sum(), 1))


def _edits(want: list[str], got: list[str]) -> int:
    row = list(range(len(got) + 1))
    for i, word in enumerate(want, start=1):
        diagonal, row[0] = row[0], i
        for j, other in enumerate(got, start=1):
            above = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, diagonal + (word != other))
            diagonal = above
    return row[-1]


def sa_wer(truth: list[conversation.Turn], segments: list[dict]) -> float:
    """Speaker-attributed WER with the label-to-speaker mapping of fewest errors."""
    said: dict[str, list[str]] = {}
    for turn in truth:
        said.setdefault(turn.speaker, []).extend(words_of(turn.text))
    heard: dict[str, list[str]] = {}
    for segment in segments:
        heard.setdefault(segment["speaker"], []).extend(words_of(segment["text"]))
    speakers, labels = list(said), list(heard)
    best = None
    for chosen in itertools.permutations(labels + [None] * len(speakers), len(speakers)):
        errors = sum(
            _edits(said[s], heard.get(label, []) if label else [])
            for s, label in zip(speakers, chosen, strict=True)
        )
        left = set(labels) - set(chosen)  # words under labels mapped to nobody: insertions
        errors += sum(len(heard[label]) for label in left)
        best = errors if best is None else min(best, errors)
    return best / max(sum(map(len, said.values())), 1)


def plain_wer(truth: list[conversation.Turn], text: str) -> float:
    want = [w for turn in sorted(truth, key=lambda t: t.start) for w in words_of(turn.text)]
    return _edits(want, words_of(text)) / max(len(want), 1)


def right_names(truth: list[conversation.Turn], segments: list[dict]) -> float:
    right = total = 0
    for segment in segments:
        start, end = segment["start"], segment["end"]
        voice = max(truth, key=lambda t: min(end, t.end) - max(start, t.start)).speaker
        words = len(segment["text"].split())
        total += words
        right += words * (segment["speaker"] == voice)
    return right / max(total, 1)


def _peak_mib(service: Service) -> float:
    status = Path(f"/proc/{service.proc.pid}/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("VmHWM:")).split()[1]) / 1024


def _start(module: str, work: Path, env: dict[str, str], python: str) -> Service:
    port = free_port()
    args = ["-m", module, "--port", str(port)]
    return start_service(args, port, work / f"{module}.log", env, timeout=300, python=python)


def _diarize(senko: Service, wav: bytes) -> dict:
    """The diarizer's own answer (POST /diarize) for a WAV."""
    files = [
        ("options", (None, json.dumps({"model": "senko"}), "application/json")),
        ("file", ("a.wav", wav)),
    ]
    answer = requests.post(senko.url + "/diarize", files=files, timeout=14400)
    answer.raise_for_status()
    return answer.json()


def measure(minutes: float, speakers: int, overlaps: bool, seed: int, stack: dict) -> dict:
    talk, samples = conversation.make(minutes * 60, speakers=speakers, seed=seed, overlaps=overlaps)
    wav = conversation.wav_bytes(samples)
    voices = list(conversation.VOICES)[:speakers]
    clips = [
        conversation.wav_bytes(conversation.reference_clip(v, seed=seed + 100)) for v in voices
    ]
    started = time.monotonic()
    found = _diarize(stack["senko"], wav)
    diarize_s = time.monotonic() - started
    row = {
        "minutes": minutes,
        "speakers": speakers,
        "overlaps": overlaps,
        "seconds": talk.duration,
        "found_speakers": len(found["speakers"]),
        "der": round(der(talk.turns, found["turns"], talk.duration), 4),
        "diarize_rtf": round(diarize_s / talk.duration, 3),
        "senko_peak_mib": round(_peak_mib(stack["senko"])),
    }
    # The diarizer's figures at once: on a slow machine a long conversation's two
    # transcriptions through the edge take much longer again.
    print(json.dumps({"step": "diarizer", **row}), flush=True)
    client = openai.OpenAI(base_url=stack["edge"].url + "/v1", api_key="-", timeout=7200)
    common = {"model": "gpt-4o-transcribe-diarize", "response_format": "diarized_json"}
    started = time.monotonic()
    whole = client.audio.transcriptions.create(file=("a.wav", wav), **common).model_dump()
    whole_s = time.monotonic() - started
    named = client.audio.transcriptions.create(
        file=("a.wav", wav),
        known_speaker_names=voices,
        known_speaker_references=[
            "data:audio/wav;base64," + base64.b64encode(c).decode() for c in clips
        ],
        **common,
    ).model_dump()
    sa, plain = sa_wer(talk.turns, whole["segments"]), plain_wer(talk.turns, whole["text"])
    return {
        **row,
        "sa_wer": round(sa, 4),
        "wer": round(plain, 4),
        # The floor of SA-WER is the plain WER (what the ASR alone gets wrong): the ratio
        # is what the attribution adds on top of it.
        "sa_wer_over_wer": round(sa / plain, 3) if plain else None,
        "known_right": round(right_names(talk.turns, named["segments"]), 4),
        "diarized_transcription_rtf": round(whole_s / talk.duration, 3),
        "senko_peak_mib": round(_peak_mib(stack["senko"])),
    }


def memory(lengths: list[float], work: Path) -> list[dict]:
    """The peak memory (VmHWM) of one diarizer with its model loaded (on a reference clip),
    then after a two-speaker conversation of each length in turn, shortest first: what a
    longer recording adds to the peak the shorter ones set."""
    clip = conversation.wav_bytes(conversation.reference_clip("piper-joe", seed=22))
    senko = _start("aistack_diarize_senko", work, {"AISTACK_DEVICE": "cpu"}, sys.executable)
    rows: list[dict] = []
    try:
        for minutes in [0.0, *sorted(lengths)]:
            if minutes:
                _talk, samples = conversation.make(minutes * 60, speakers=2, seed=21)
                wav = conversation.wav_bytes(samples)
            else:  # the model loaded
                wav = clip
            started = time.monotonic()
            _diarize(senko, wav)
            peak = round(_peak_mib(senko))
            rows.append(
                {
                    "minutes": minutes,
                    "seconds": round(len(wav) / 32_000, 1),
                    "diarize_s": round(time.monotonic() - started, 1),
                    "peak_mib": peak,
                    "grown_mib": peak - rows[-1]["peak_mib"] if rows else 0,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
        return rows
    finally:
        senko.stop()


def corpus(lengths: list[float], work: Path) -> list[dict]:
    """The corpus at each length, measured through one diarizer, one Whisper, one edge."""
    stack = {
        "senko": _start("aistack_diarize_senko", work, {"AISTACK_DEVICE": "cpu"}, sys.executable),
        "whisper": _start("aistack_asr_whisper", work, {}, str(MAIN_PYTHON)),
    }
    env = {
        "AISTACK_ASR_BACKENDS": stack["whisper"].url,
        "AISTACK_DIARIZE_BACKENDS": stack["senko"].url,
        "AISTACK_REDIS_URL": "",
    }
    stack["edge"] = _start("aistack_edge", work, env, sys.executable)
    rows = []
    try:
        for minutes in lengths:
            for speakers, overlaps, seed in CORPUS:
                rows.append(measure(minutes, speakers, overlaps, seed, stack))
                print(json.dumps(rows[-1]), flush=True)
    finally:
        for service in stack.values():
            service.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0])
    parser.add_argument("--memory", type=float, nargs="+", help="lengths (minutes) to measure")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = memory(args.memory, work) if args.memory else corpus(args.minutes, work)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
