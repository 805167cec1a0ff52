"""Long-form chunk planning and stitching: pure functions, plain tests."""

import itertools

import numpy as np
import pytest

from aistack_asr_parakeet.chunks import (
    Chunk,
    cut_points,
    monotonic,
    plan_chunks,
    read_chunks,
    stitch,
)
from aistack_contract.transcription import Word


def w(word: str, start: float, end: float) -> Word:
    return Word(word=word, start=start, end=end)


def texts(words: list[Word]) -> list[str]:
    return [x.word for x in words]


@pytest.mark.parametrize("total", [1, 50, 100])
def test_audio_within_one_window_is_one_chunk(total: int) -> None:
    assert plan_chunks(total, window=100, overlap=10, min_last=30) == [Chunk(0, total)]


def test_windows_step_by_window_minus_overlap_and_cover_the_audio() -> None:
    chunks = plan_chunks(300, window=100, overlap=20, min_last=10)
    assert chunks == [Chunk(0, 100), Chunk(80, 180), Chunk(160, 260), Chunk(240, 300)]
    for a, b in itertools.pairwise(chunks):
        assert a.end - b.start == 20


def test_a_short_last_window_joins_the_one_before() -> None:
    # the last window would be [240, 270): 30 samples, shorter than 40
    assert plan_chunks(270, window=100, overlap=20, min_last=40) == [
        Chunk(0, 100),
        Chunk(80, 180),
        Chunk(160, 270),
    ]
    # long enough: kept
    assert plan_chunks(270, window=100, overlap=20, min_last=30)[-1] == Chunk(240, 270)


def test_no_overlap_and_exact_multiples() -> None:
    assert plan_chunks(200, window=100, overlap=0, min_last=0) == [Chunk(0, 100), Chunk(100, 200)]


def test_two_windows_merge_into_one_when_the_second_is_short() -> None:
    assert plan_chunks(105, window=100, overlap=10, min_last=20) == [Chunk(0, 105)]


@pytest.mark.parametrize("overlap", [-1, 100, 150])
def test_overlap_must_be_shorter_than_the_window(overlap: int) -> None:
    with pytest.raises(ValueError, match="overlap"):
        plan_chunks(1000, window=100, overlap=overlap, min_last=0)


@pytest.mark.parametrize("total", [1, 99, 100, 105, 200, 270, 300, 1001])
@pytest.mark.parametrize("piece", [1, 7, 64, 5000])
def test_read_as_it_comes_the_windows_are_the_planned_ones(total: int, piece: int) -> None:
    """Whatever the size of the pieces the audio arrives in, the windows are those planned
    over the whole, and each carries the samples of its span."""
    audio = np.arange(total, dtype=np.float32)
    pieces = [audio[i : i + piece] for i in range(0, total, piece)]
    for window, overlap, min_last in [(100, 20, 40), (100, 0, 0), (100, 10, 20), (50, 49, 80)]:
        read = list(read_chunks(pieces, window, overlap, min_last))
        assert [c for c, _ in read] == plan_chunks_by_hand(total, window, overlap, min_last)
        assert all(np.array_equal(s, audio[c.start : c.end]) for c, s in read)


def plan_chunks_by_hand(total: int, window: int, overlap: int, min_last: int) -> list[Chunk]:
    """The plan, written out over the whole length: what reading as it comes must give."""
    step = window - overlap
    chunks = [Chunk(0, min(window, total))]
    while chunks[-1].end < total:
        start = chunks[-1].start + step
        chunks.append(Chunk(start, min(start + window, total)))
    if len(chunks) > 1 and chunks[-1].end - chunks[-1].start < min_last:
        chunks[-2:] = [Chunk(chunks[-2].start, chunks[-1].end)]
    return chunks


def test_cuts_lie_mid_overlap_in_seconds() -> None:
    chunks = [Chunk(0, 16_000), Chunk(12_000, 28_000), Chunk(24_000, 30_000)]
    assert cut_points(chunks, 16_000) == [0.875, 1.625]
    assert cut_points([Chunk(0, 5)], 16_000) == []


def test_each_window_tells_its_own_stretch() -> None:
    # windows [0, 10] and [8, 18] s: the cut is at 9 s
    first = [w("a", 1, 2), w("b", 7, 8), w("c", 8.5, 8.9), w("late", 9.2, 9.9)]
    second = [w("early", 8.0, 8.6), w("d", 9.1, 9.5), w("e", 12, 13)]
    assert texts(stitch([first, second], [9.0])) == ["a", "b", "c", "d", "e"]


def test_a_word_straddling_the_cut_is_kept_once() -> None:
    # both windows heard "fox" around the cut, timed a little differently
    first = [w("the", 7.5, 8.0), w("fox", 8.6, 9.1)]
    second = [w("Fox,", 8.9, 9.4), w("jumps", 9.5, 10.0)]
    stitched = stitch([first, second], [9.0])
    assert texts(stitched) == ["the", "fox", "jumps"]


def test_different_words_at_the_cut_are_both_kept() -> None:
    first = [w("red", 8.6, 9.1)]
    second = [w("fox", 8.9, 9.4)]
    assert texts(stitch([first, second], [9.0])) == ["red", "fox"]


def test_stitching_needs_one_cut_between_each_pair_of_windows() -> None:
    with pytest.raises(ValueError):
        stitch([[], []], [])
    assert stitch([[w("x", 0, 1)]], []) == [w("x", 0, 1)]


def test_times_never_go_back() -> None:
    words = monotonic([w("a", 1.0, 2.0), w("b", 1.8, 2.5), w("c", 2.4, 2.45), w("d", 3, 2.9)])
    assert [(x.start, x.end) for x in words] == [(1.0, 2.0), (2.0, 2.5), (2.5, 2.5), (3, 3)]
