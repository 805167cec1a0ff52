"""What `make up` runs: the CPU backends with their default ports, and the edge's. Shared by
scripts/up.py (which starts them) and scripts/doctor.py (which checks the ports are free);
plain enough for any Python 3, so that the doctor can run on one too old for the rest."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

EDGE_PORT = 11500


@dataclass(frozen=True)
class Backend:
    name: str
    module: str
    port: int
    capability: str  # which AISTACK_*_BACKENDS list of the edge it joins

    @property
    def option(self) -> str:
        """up.py's option that moves it to another port."""
        return f"--{self.name}-port"


BACKENDS = (
    Backend("asr-whisper", "aistack_asr_whisper", 11510, "ASR_BACKENDS"),
    Backend("tts-piper", "aistack_tts_piper", 11520, "TTS_BACKENDS"),
    Backend("llm-llamacpp", "aistack_llm_llamacpp", 11530, "LLM_UPSTREAMS"),
)


def add_port_options(parser: argparse.ArgumentParser) -> None:
    """--port (the edge's; AISTACK_PORT too) and one --<backend>-port per backend."""
    port = int(os.environ.get("AISTACK_PORT", EDGE_PORT))
    parser.add_argument("--port", type=int, default=port, help="the edge's")
    for backend in BACKENDS:
        parser.add_argument(backend.option, type=int, default=backend.port)


def backend_port(args: argparse.Namespace, backend: Backend) -> int:
    return getattr(args, backend.option[2:].replace("-", "_"))
