"""A client that never reads a two-minute speech answer: how long does it keep the GPU
slot after the backend is done, and when is it cut off?

    python bench/slow_reader.py [--seconds 120] [--write-timeout 30]

It starts tts-piper and an edge (embedded slot, AISTACK_CLIENT_WRITE_TIMEOUT_S as
given), sends a WAV synthesis of about `--seconds` of speech from a client whose
receive window is a few kB and which reads nothing, and watches the slot holder
(/admin/api/status, every 20 ms) and the socket. Piper's end is its own log line for the
request (the time it answered in). The goal: the slot is free within 0.5 s of Piper's
end, or of the write timeout's hang-up when that comes first (then Piper is stopped).
"""

import argparse
import re
import select
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
from harness import started

from aistack_testing.edge import never_reading

SENTENCE = "The harbour wakes slowly at dawn, and the boats go out one by one. "
CHARS_PER_SECOND = 15.0  # Piper's default voice, measured: 75 s of WAV for 1143 characters
_ANSWERED = re.compile(r"^(\S+ \S+) INFO .* POST /v1/audio/speech -> (.*) in ([\d.]+) s$", re.M)


def holder(http: httpx.Client, edge: str) -> str | None:
    return http.get(edge + "/admin/api/status").json()["slot"]["holder"]


def piper_end(log: Path) -> tuple[float, str] | None:
    """The wall-clock time Piper answered the synthesis, and how (200, client gone)."""
    found = _ANSWERED.findall(log.read_text())
    if not found:
        return None
    stamp, outcome, _ = found[-1]
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp(), outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--write-timeout", type=float, default=30.0)
    args = parser.parse_args()
    text = SENTENCE * max(1, round(args.seconds * CHARS_PER_SECOND / len(SENTENCE)))
    body = httpx.Request(
        "POST", "http://x", json={"model": "piper", "voice": "alloy", "input": text,
                                  "response_format": "wav"}
    ).content  # fmt: skip
    with tempfile.TemporaryDirectory() as work:
        logdir = Path(work)
        with started("aistack_tts_piper", {}, logdir) as piper:
            env = {
                "AISTACK_TTS_BACKENDS": piper.url,
                "AISTACK_CLIENT_WRITE_TIMEOUT_S": str(args.write_timeout),
            }
            with started("aistack_edge", env, logdir) as edge, httpx.Client(timeout=10) as http:
                began = time.time()
                with never_reading(edge.url, "/v1/audio/speech", body) as sock:
                    poller = select.poll()
                    poller.register(sock, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
                    held = freed = cut = None
                    while freed is None or cut is None:
                        now = time.time()
                        assert now - began < 900, "no end within 15 minutes"
                        if cut is None and poller.poll(0):
                            cut = now
                        if freed is None:
                            taken = holder(http, edge.url)
                            if taken is not None:
                                held = held or now
                            elif held is not None:
                                freed = now
                        time.sleep(0.02)
                log = next(logdir.glob("aistack_tts_piper-*.log"))
                end = piper_end(log)
    assert end is not None, "Piper logged no answer"
    ended, outcome = end
    print(f"speech asked: {len(text)} characters (about {args.seconds:g} s of WAV)")
    print(f"write timeout: {args.write_timeout:g} s")
    print(f"Piper answered {outcome} {ended - began:.1f} s after the request")
    lag = freed - ended
    print(f"slot free {freed - began:.1f} s after the request: {lag:+.2f} s from Piper's end")
    print(f"connection reset {cut - began:.1f} s after the request")


if __name__ == "__main__":
    main()
