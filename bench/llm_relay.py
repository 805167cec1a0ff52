"""Time to first token and tokens per second of a streamed chat completion, relayed
through the edge vs. straight to the upstream, in the same run.

    python bench/llm_relay.py [--upstream URL] [--model smollm2] [--runs 5] [--tokens 256]

With no --upstream it starts the embedded llama.cpp server (aistack_llm_llamacpp) on a
free port; it always starts an edge in front of the upstream. Runs alternate between
the two paths. The goal: the upstream's tokens/s over the edge's at most 1.02.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from aistack_testing.processes import Service, free_port, start_service

PROMPT = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]
# SmolLM2's end tokens banned, so that every run streams exactly --tokens tokens.
ENDLESS = {"0": -100, "1": -100, "2": -100}


@dataclass
class Run:
    first_token_s: float
    tokens: int
    tokens_per_s: float


def measure(url: str, model: str, tokens: int) -> Run:
    body = {
        "model": model,
        "messages": PROMPT,
        "max_tokens": tokens,
        "temperature": 0,
        "stream": True,
        "logit_bias": ENDLESS,
    }
    start = time.perf_counter()
    arrivals = []
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=300) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"][0]["delta"]
            if delta.get("content"):
                arrivals.append(time.perf_counter() - start)
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    return Run(arrivals[0], len(arrivals), rate)


def start(module: str, env: dict[str, str], logdir: Path) -> Service:
    port = free_port()
    log = logdir / f"{module}.log"
    return start_service(["-m", module, "--port", str(port)], port, log, env, timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--upstream", help="base URL of an OpenAI-compatible LLM server")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=256)
    args = parser.parse_args()
    logdir = Path(tempfile.mkdtemp(prefix="llm-relay-"))
    started: list[Service] = []
    try:
        if args.upstream is None:
            started.append(start("aistack_llm_llamacpp", {}, logdir))
            args.upstream = started[-1].url
        started.append(start("aistack_edge", {"AISTACK_LLM_UPSTREAMS": args.upstream}, logdir))
        paths = {"upstream": args.upstream, "edge": started[-1].url}
        runs: dict[str, list[Run]] = {name: [] for name in paths}
        for url in paths.values():
            measure(url, args.model, 8)  # warm up
        for _ in range(args.runs):
            for name, url in paths.items():
                runs[name].append(measure(url, args.model, args.tokens))
        medians = {}
        for name, results in runs.items():
            first = statistics.median(r.first_token_s for r in results)
            rate = statistics.median(r.tokens_per_s for r in results)
            medians[name] = (first, rate)
            print(
                f"{name:8} {paths[name]}: first token {first * 1000:.1f} ms, "
                f"{rate:.1f} tokens/s ({results[0].tokens} tokens, median of {args.runs})"
            )
        (up_first, up_rate), (edge_first, edge_rate) = medians["upstream"], medians["edge"]
        print(
            f"edge vs upstream: first token x{edge_first / up_first:.3f}, "
            f"tokens/s upstream/edge x{up_rate / edge_rate:.3f} (goal <= 1.02)"
        )
    finally:
        for service in reversed(started):
            service.stop()


if __name__ == "__main__":
    sys.exit(main())
