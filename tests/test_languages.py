"""Language hints as clients write them: one reading (aistack_contract.languages) for the
edge's routing, what it forwards, and every ASR backend; a hint a model does not know is
dropped, never refused. Through the official openai SDK, a real edge and asr-whisper."""

import openai
import pytest

from aistack_contract.languages import language_tag, spoken_by
from aistack_contract.models import ModelCard
from aistack_edge.asr.form import TranscriptionForm
from aistack_testing.plugin import SENTENCE
from aistack_testing.speech import words_in_order

WHISPER_LANGUAGES = ["en", "zh", "de", "pt", "he", "jw", "yue"]
TINY_EN = ModelCard(id="whisper-tiny.en", owned_by="openai", capabilities=["asr"],
                    languages=["en"], family="whisper")  # fmt: skip


@pytest.mark.parametrize(
    ("hint", "tag", "code"),
    [
        ("en", "en", "en"),
        ("EN", "en", "en"),
        ("en-US", "en", "en"),
        ("en_GB", "en", "en"),
        ("en_GB.UTF-8", "en", "en"),
        ("de_DE@euro", "de", "de"),
        ("zh-Hant-TW", "zh", "zh"),
        ("zh-CN", "zh", "zh"),
        ("zh-yue", "yue", "yue"),
        ("yue-HK", "yue", "yue"),
        ("pt-BR", "pt", "pt"),
        (" de ", "de", "de"),
        ("iw", "iw", "he"),  # ISO 639's withdrawn code for Hebrew
        ("jv", "jv", "jw"),  # Whisper spells Javanese `jw`
        ("fr-FR", "fr", None),  # not a language of this model: dropped
        ("klingon", "klingon", None),
        ("auto", None, None),
        ("und", None, None),
        ("", None, None),
        (None, None, None),
    ],
)
def test_a_hint_reads_as_the_code_the_model_lists(hint, tag, code):
    assert language_tag(hint) == tag
    assert spoken_by(hint, WHISPER_LANGUAGES) == code


def test_a_model_that_lists_no_languages_takes_the_primary_code():
    assert spoken_by("sw-KE", []) == "sw"


@pytest.mark.parametrize(("model", "hint"), [("whisper-tiny.en", "fr"), ("auto", "fr-CA")])
def test_a_hint_the_model_does_not_know_is_dropped(model, hint):
    assert TranscriptionForm(model=model, language=hint).options_for(TINY_EN).language is None


@pytest.fixture(scope="module")
def client(asr_edge):
    return openai.OpenAI(base_url=asr_edge.url + "/v1", api_key="unused", max_retries=0)


@pytest.mark.parametrize("model", ["whisper-tiny.en", "auto", "whisper-1"])
@pytest.mark.parametrize("hint", ["en-US", "en_GB", "EN", "fr", "zh-Hant-TW", "klingon"])
def test_what_browsers_and_people_send_is_transcribed(client, speech_wav, model, hint):
    """`navigator.language` and its kin: a 200, the language the model detected."""
    with speech_wav.open("rb") as f:
        body = client.audio.transcriptions.create(
            model=model, file=f, language=hint, response_format="verbose_json"
        )
    assert body.language == "en"
    assert words_in_order(SENTENCE, body.text) >= 0.8, body.text
