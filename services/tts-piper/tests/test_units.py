"""Settings and the voice catalogue, without a server."""

from pathlib import Path

import pytest

from aistack_contract.errors import AistackError
from aistack_tts_piper.settings import PiperSettings
from aistack_tts_piper.voices import VoiceCatalog, VoiceFile, bundled_voice, voices_in


def named(voice: VoiceFile, voice_id: str) -> VoiceFile:
    return VoiceFile(voice_id, voice.model, voice.config, voice_id, "de_DE", 16000)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AISTACK_PIPER_MODEL_ALIASES", "tts-1, ")
    monkeypatch.setenv("AISTACK_PIPER_VOICE_MAP", '{"nova": "de"}')
    monkeypatch.setenv("AISTACK_TTS_MAX_INPUT_CHARS", "100")
    settings = PiperSettings()
    assert settings.piper_model_aliases == ["tts-1"]
    assert settings.piper_voice_map == {"nova": "de"}
    assert settings.tts_max_input_chars == 100
    monkeypatch.setenv("AISTACK_PIPER_MODEL_ALIASES", "")
    assert PiperSettings().piper_model_aliases == []


def test_bundled_voice_is_read_from_its_config() -> None:
    voice = bundled_voice()
    assert (voice.id, voice.name, voice.language, voice.sample_rate) == (
        "en_US-joe-medium", "joe", "en_US", 22050,
    )  # fmt: skip


def test_names_resolve_to_voices() -> None:
    joe = bundled_voice()
    german = named(joe, "de")
    catalog = VoiceCatalog([joe, german], default="de", names={"alloy": joe.id, "anna": "de"})
    assert catalog.default is german
    assert catalog.resolve("alloy") is joe
    assert catalog.resolve("shimmer") is german
    assert catalog.resolve("anna") is german
    assert catalog.resolve(joe.id) is joe
    assert catalog.aliases_of(joe) == ["alloy"]
    with pytest.raises(AistackError, match="unknown voice 'bob'"):
        catalog.resolve("bob")


def test_with_one_voice_every_openai_name_reaches_it() -> None:
    catalog = VoiceCatalog([bundled_voice()])
    assert {catalog.resolve(name).id for name in ("alloy", "ash", "nova", "verse")} == {
        "en_US-joe-medium"
    }


@pytest.mark.parametrize(
    ("default", "names"), [("nobody", {}), (None, {"nova": "nobody"}), (None, {"x": "nobody"})]
)
def test_names_of_missing_voices_are_refused(default: str | None, names: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="nobody"):
        VoiceCatalog([bundled_voice()], default=default, names=names)


def test_voices_dir_needs_config_beside_model(tmp_path: Path) -> None:
    (tmp_path / "lonely.onnx").write_bytes(b"")
    assert voices_in(tmp_path) == []
    with pytest.raises(ValueError, match="does not exist"):
        voices_in(tmp_path / "missing")
