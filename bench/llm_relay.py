"""Time to first token and tokens per second of a streamed chat completion, relayed
through the edge vs. straight to the upstream, in the same run.

    python bench/llm_relay.py [--upstream URL] [--model smollm2] [--runs 5] [--tokens 256]

With no --upstream it starts the embedded llama.cpp server (aistack_llm_llamacpp) on a
free port; it always starts an edge in front of the upstream, with an asr-whisper
backend beside it, as `make up` runs it: each relayed chat makes room first (the
hot-swap's `/evict` call to the ASR backend), so that cost is in the figure. Runs
alternate between the two paths. The goal: the upstream's tokens/s over the edge's at
most 1.02.
"""

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from harness import started

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


def run(upstream: str | None, model: str, runs: int, tokens: int, logdir: Path) -> dict:
    """Medians through the upstream and through the edge, and their ratios."""
    with contextlib.ExitStack() as stack:
        if upstream is None:
            upstream = stack.enter_context(started("aistack_llm_llamacpp", {}, logdir)).url
        asr = stack.enter_context(started("aistack_asr_whisper", {}, logdir))
        env = {"AISTACK_LLM_UPSTREAMS": upstream, "AISTACK_ASR_BACKENDS": asr.url}
        edge = stack.enter_context(started("aistack_edge", env, logdir))
        paths = {"upstream": upstream, "edge": edge.url}
        measured: dict[str, list[Run]] = {name: [] for name in paths}
        for url in paths.values():
            measure(url, model, 8)  # warm up
        for _ in range(runs):
            for name, url in paths.items():
                measured[name].append(measure(url, model, tokens))
    figures: dict = {"runs": runs}
    for name, results in measured.items():
        figures[name] = {
            "url": paths[name],
            "first_token_s": statistics.median(r.first_token_s for r in results),
            "tokens_per_s": statistics.median(r.tokens_per_s for r in results),
            "tokens": results[0].tokens,
        }
    up, edge_figures = figures["upstream"], figures["edge"]
    figures["first_token_ratio"] = edge_figures["first_token_s"] / up["first_token_s"]
    figures["rate_ratio"] = up["tokens_per_s"] / edge_figures["tokens_per_s"]
    return figures


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
    figures = run(args.upstream, args.model, args.runs, args.tokens, logdir)
    for name in ("upstream", "edge"):
        f = figures[name]
        print(
            f"{name:8} {f['url']}: first token {f['first_token_s'] * 1000:.1f} ms, "
            f"{f['tokens_per_s']:.1f} tokens/s ({f['tokens']} tokens, median of {args.runs})"
        )
    print(
        f"edge vs upstream: first token x{figures['first_token_ratio']:.3f}, "
        f"tokens/s upstream/edge x{figures['rate_ratio']:.3f} (goal <= 1.02)"
    )


if __name__ == "__main__":
    sys.exit(main())
