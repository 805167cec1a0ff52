"""Pure logic of the edge's speech-to-text: routing, cue sizing, rendering, joins."""

import pytest

from aistack_contract.errors import AistackError
from aistack_contract.models import ModelCard
from aistack_contract.transcription import Segment, Word
from aistack_edge.asr.cues import MAX_CHARS, MAX_SECONDS, subtitle_cues
from aistack_edge.asr.form import TranscriptionForm
from aistack_edge.asr.render import join_texts, srt, vtt
from aistack_edge.asr.routing import choose_model, detector_for
from aistack_edge.asr.transcript import delta_of
from aistack_edge.catalog import Entry

WHISPER_SMALL = ModelCard(id="whisper-small", owned_by="openai", capabilities=["asr"],
                          languages=["en", "fr", "zh"], supports_translate=True,
                          family="whisper")  # fmt: skip
WHISPER_TINY_EN = ModelCard(id="whisper-tiny.en", owned_by="openai", capabilities=["asr"],
                            languages=["en"], family="whisper", size=75_000_000)  # fmt: skip
WHISPER_LARGE_V3 = ModelCard(id="whisper-large-v3", owned_by="openai", capabilities=["asr"],
                             languages=["en", "fr", "zh", "yue"], supports_translate=True,
                             family="whisper", size=3_000_000_000)  # fmt: skip
WHISPER_DISTIL = ModelCard(id="whisper-distil-large-v3", owned_by="openai",
                           capabilities=["asr"], languages=["en"], family="whisper",
                           size=1_500_000_000)  # fmt: skip
SENSEVOICE = ModelCard(id="iic/SenseVoiceSmall", owned_by="alibaba", capabilities=["asr"],
                       languages=["zh", "yue", "en", "ja", "ko"], family="sensevoice")  # fmt: skip
PARAKEET = ModelCard(id="nvidia/parakeet-tdt-0.6b-v3", owned_by="nvidia", capabilities=["asr"],
                     languages=["en", "fr", "de"], family="parakeet")  # fmt: skip
# A model whose backend names no family (an unknown engine): only its own id reaches it.
STRANGER = ModelCard(id="whisperish-x", owned_by="someone", capabilities=["asr"])
ALL = [WHISPER_TINY_EN, WHISPER_SMALL, SENSEVOICE, PARAKEET]


@pytest.mark.parametrize(
    ("requested", "language", "cards", "chosen"),
    [
        ("auto", "zh", ALL, SENSEVOICE),
        ("auto", "ja", ALL, SENSEVOICE),
        ("auto", "fr", ALL, PARAKEET),
        ("auto", "en-US", ALL, PARAKEET),
        ("auto", "sw", ALL, WHISPER_SMALL),
        ("auto", None, ALL, WHISPER_SMALL),
        ("auto", "zh", [WHISPER_TINY_EN, WHISPER_SMALL, PARAKEET], WHISPER_SMALL),
        ("auto", "fr", [WHISPER_TINY_EN, SENSEVOICE], WHISPER_TINY_EN),
        ("auto", "en", [SENSEVOICE], SENSEVOICE),
        ("whisper-1", "zh", ALL, WHISPER_SMALL),
        ("whisper-1", None, [WHISPER_TINY_EN, PARAKEET], WHISPER_TINY_EN),
        ("parakeet", None, ALL, PARAKEET),
        ("sensevoice", "en", ALL, SENSEVOICE),
        ("whisper-tiny.en", "zh", ALL, WHISPER_TINY_EN),
        ("iic/SenseVoiceSmall", None, ALL, SENSEVOICE),
    ],
)
def test_choose_model(requested, language, cards, chosen):
    assert choose_model(requested, language, _entries(cards)).card is chosen


@pytest.mark.parametrize(
    ("requested", "language", "translate", "cards", "chosen"),
    [
        # The largest Whisper wins where the contract's default (small) is not installed.
        ("whisper-1", None, False, [WHISPER_TINY_EN, WHISPER_LARGE_V3], WHISPER_LARGE_V3),
        ("auto", None, False, [WHISPER_TINY_EN, WHISPER_DISTIL], WHISPER_DISTIL),
        ("auto", None, False, [WHISPER_LARGE_V3, WHISPER_SMALL], WHISPER_SMALL),
        # A translation goes to a model that translates, whatever the hint prefers.
        ("whisper-1", None, True, [WHISPER_DISTIL, WHISPER_LARGE_V3], WHISPER_LARGE_V3),
        ("auto", "zh", True, [SENSEVOICE, WHISPER_TINY_EN, WHISPER_LARGE_V3], WHISPER_LARGE_V3),
        ("auto", "fr-FR", True, [PARAKEET, WHISPER_TINY_EN, WHISPER_SMALL], WHISPER_SMALL),
        # None translates, French hinted: the model that speaks French, which refuses the
        # translation with a clear 400 (the English-only Whisper would hear French as
        # English).
        ("auto", "fr", True, [PARAKEET, WHISPER_TINY_EN], PARAKEET),
        # None translates, no hint: the English-only Whisper, which answers English speech
        # in English already.
        ("whisper-1", None, True, [WHISPER_TINY_EN], WHISPER_TINY_EN),
        ("auto", None, True, [WHISPER_TINY_EN, PARAKEET], WHISPER_TINY_EN),
    ],
)
def test_choose_model_by_size_and_task(requested, language, translate, cards, chosen):
    assert choose_model(requested, language, _entries(cards), translate).card is chosen


def _entries(cards: list[ModelCard]) -> list[Entry]:
    return [Entry(card, f"http://backend-{n}") for n, card in enumerate(cards)]


@pytest.mark.parametrize(
    ("requested", "language", "translate", "cards", "detector"),
    [
        # No hint, another family installed: the best multilingual Whisper detects.
        ("auto", None, False, [WHISPER_TINY_EN, WHISPER_SMALL, PARAKEET], WHISPER_SMALL),
        ("auto", "auto", False, [WHISPER_LARGE_V3, SENSEVOICE], WHISPER_LARGE_V3),
        # A hint, a pinned model, a translation, Whisper alone: no detection first.
        ("auto", "de-DE", False, [WHISPER_SMALL, PARAKEET], None),
        ("whisper-1", None, False, [WHISPER_SMALL, PARAKEET], None),
        ("auto", None, True, [WHISPER_SMALL, PARAKEET], None),
        ("auto", None, False, [WHISPER_TINY_EN, WHISPER_SMALL], None),
        # Only an English-only Whisper: nothing can detect.
        ("auto", None, False, [WHISPER_TINY_EN, PARAKEET], None),
    ],
)
def test_detection_before_routing(requested, language, translate, cards, detector):
    found = detector_for(requested, language, _entries(cards), translate)
    assert (found.card if found else None) is detector


def test_a_model_of_no_family_is_not_taken_for_whisper():
    """The family comes from the backend's card, never from the id: an unknown engine's
    model is not what `whisper-1` or `auto` mean."""
    assert choose_model("whisperish-x", None, _entries([STRANGER])).card is STRANGER
    with pytest.raises(AistackError):
        choose_model("whisper-1", None, _entries([STRANGER]))


@pytest.mark.parametrize(
    ("requested", "cards", "status"),
    [("whisper-9", ALL, 400), ("parakeet", [WHISPER_SMALL], 400), ("auto", [], 503)],
)
def test_choose_model_refuses(requested, cards, status):
    with pytest.raises(AistackError) as refused:
        choose_model(requested, None, _entries(cards))
    assert refused.value.status == status


def _words(text: str, start: float, step: float) -> list[Word]:
    return [
        Word(start=start + i * step, end=start + (i + 1) * step, word=" " + w)
        for i, w in enumerate(text.split())
    ]


def test_subtitle_cues_respect_the_limits():
    long = _words(" ".join(["word"] * 60), 0.0, 0.3)  # 18 s, 299 chars
    short = _words("Yes.", 20.0, 0.2)
    cues = subtitle_cues(
        [
            Segment(start=0.0, end=18.0, text=" long", words=long),
            Segment(start=20.0, end=20.2, text=" Yes.", words=short),
        ]
    )
    assert [c.id for c in cues] == list(range(len(cues)))
    for cue in cues[:-1]:
        assert len(cue.text.strip()) <= MAX_CHARS and cue.end - cue.start <= MAX_SECONDS
    assert sum(len(c.words) for c in cues[:-1]) == 60
    assert cues[-1].text == " Yes." and cues[-1].end - cues[-1].start == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("words", "text"),
    [
        (["Hello", "there."], " Hello there."),  # Parakeet's and SenseVoice's words
        ([" Hello", " there."], " Hello there."),  # faster-whisper's, spaces in front
        (["你", "好。"], " 你好。"),
    ],
)
def test_subtitle_cues_space_their_words(words, text):
    timed = [Word(start=i * 0.5, end=(i + 1) * 0.5, word=w) for i, w in enumerate(words)]
    segment = Segment(start=0.0, end=1.0, text=text, words=timed)
    assert subtitle_cues([segment])[0].text == text


def test_subtitle_cues_never_cut_a_written_word():
    """Whisper may time "sub-paddle" as "sub" and "-paddle": a cue keeps them together,
    and the cues join back to the segment's own text."""
    text = " " + " ".join(["word"] * 12) + " sub-paddle " + " ".join(["word"] * 10)
    pieces = text.split()
    at = pieces.index("sub-paddle")
    pieces[at : at + 1] = ["sub", "-paddle"]
    timed = [Word(start=i * 0.3, end=(i + 1) * 0.3, word=w) for i, w in enumerate(pieces)]
    cues = subtitle_cues([Segment(start=0.0, end=7.5, text=text, words=timed)])
    assert len(cues) > 1
    assert any("sub-paddle" in cue.text for cue in cues)
    assert join_texts([cue.text for cue in cues]) == text.strip()
    for cue in cues:
        assert len(cue.text.strip()) <= MAX_CHARS


def test_subtitle_cues_keep_a_segment_without_words():
    segment = Segment(start=0.0, end=30.0, text=" no word times here")
    assert subtitle_cues([segment])[0].text == segment.text


def test_srt_and_vtt():
    segments = [
        Segment(start=0.0, end=1.5, text=" Hello."),
        Segment(start=3661.25, end=3662.0, text=" Bye."),
    ]
    assert srt(segments) == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello.\n\n2\n01:01:01,250 --> 01:01:02,000\nBye.\n"
    )
    assert vtt(segments) == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello.\n\n01:01:01.250 --> 01:01:02.000\nBye.\n"
    )


def test_joins_space_latin_but_not_cjk():
    assert join_texts([" Hello there.", " General Kenobi."]) == "Hello there. General Kenobi."
    assert join_texts(["你好。", "世界。"]) == "你好。世界。"
    assert join_texts(["", " a", "  "]) == "a"


def test_deltas_concatenate_to_the_joined_text():
    texts = [" One.", " Two, three.", "四。", " Five."]
    joined = ""
    for text in texts:
        joined += delta_of(Segment(start=0, end=1, text=text), joined).delta
    assert joined == join_texts(texts)


@pytest.mark.parametrize(
    ("card", "language", "sent_language", "sent_translate"),
    [(WHISPER_SMALL, "fr", "fr", True), (WHISPER_TINY_EN, None, "en", False)],
)
def test_translate_options(card, language, sent_language, sent_translate):
    form = TranscriptionForm(model="whisper-1", language=language, translate=True)
    options = form.options_for(card)
    assert (options.language, options.translate) == (sent_language, sent_translate)


@pytest.mark.parametrize("card", [SENSEVOICE, PARAKEET])
def test_translate_is_malformed_where_the_model_cannot(card):
    with pytest.raises(AistackError) as refused:
        TranscriptionForm(translate=True).options_for(card)
    assert refused.value.body.kind == "malformed" and card.id in refused.value.body.message


def test_a_hint_is_forwarded_as_the_code_the_model_lists():
    form = TranscriptionForm(model="whisper-small", language="zh-Hant-TW")
    assert form.options_for(WHISPER_SMALL).language == "zh"
