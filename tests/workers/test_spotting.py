"""Incremental keyphrase spotting: each utterance decoded once per session, results independent of history."""

from __future__ import annotations

import numpy as np
import pytest

from workers import spotting
from workers.asr import AsrCache
from workers.baseline import BaselineModel

HOP = 0.02


def _mask(n_s: float, spans: list[tuple[float, float]], t0: float = 0.0) -> np.ndarray:
    t = t0 + np.arange(int(round(n_s / HOP))) * HOP
    m = np.zeros(t.size, bool)
    for s, e in spans:
        m |= (t >= s - 1e-9) & (t < e - 1e-9)
    return m


def _plan(t0: float, spans: list[tuple[float, float]], length: float = 8.0) -> list[spotting.Piece]:
    active = _mask(length, spans, t0)
    db = np.where(active, -20.0, -60.0)
    return spotting.plan(active, np.ones(active.size, bool), db, t0, HOP, t0 + length, session_start=t0 == 0.0)


def test_closed_utterance_has_the_same_piece_in_every_window():
    utt = [(5.0, 6.2)]
    keys = [{(p.start, p.end) for p in _plan(t0, utt)} for t0 in (0.0, 3.0)]
    assert keys[0] == keys[1] == {(4.85, 6.35)}


def test_open_end_is_decoded_and_start_fragment_skipped():
    # speech 6.9-10.0: open at the end of window 0-8, closed in 3-11, a start fragment in 9-17
    (p,) = _plan(0.0, [(6.9, 10.0)])
    assert p.open_end and (p.start, p.end) == (6.75, 8.0)
    assert [(q.start, q.end) for q in _plan(3.0, [(6.9, 10.0)])] == [(6.75, 10.15)]
    assert _plan(9.0, [(6.9, 10.0)]) == []  # ends 7 s before the window's end: decoded whole before
    # in a 4 s window the fragment reaches the last lookback_s seconds: decoded
    (f,) = _plan(9.0, [(6.9, 10.0)], length=4.0)
    assert f.open_start and (f.start, f.end) == (9.0, 10.15)


def test_long_speech_is_cut_on_a_session_grid_and_reused():
    """Continuous speech over many windows: pieces end on window ends and are decoded once."""
    speech = [(0.3, 60.0)]
    seen: dict[tuple[float, float], int] = {}
    total = 0.0
    starts = np.arange(0.0, 50.0, 3.0)
    for t0 in starts:
        for p in _plan(float(t0), speech):
            key = (p.start, p.end)
            if key not in seen:
                total += p.end - p.start
            seen[key] = seen.get(key, 0) + 1
            assert p.end - p.start <= 3.0 + 2 * spotting.SpottingSettings().overlap_s + 0.1
    # each second of speech decoded about 1.6 times, not 8/3 times (the whole window every 3 s)
    assert total / (starts[-1] + 8.0) < 1.7
    assert max(seen.values()) >= 2  # pieces are reused by the next window


def test_merge_keeps_one_hit_per_phrase_in_overlaps():
    class Fake:
        name = "fake"

        def spot(self, audio):
            return [("yes", 0.1, 0.4)] if audio.size > 8000 else []

    pieces = [spotting.Piece(0.0, 1.0, (0.0, 0.6), False, False), spotting.Piece(0.2, 1.2, (0.6, 1.2), False, False)]
    cache = AsrCache()
    hits = spotting.spot(pieces, np.zeros(32_000, np.float32), 0.0, "s", Fake(), cache)
    assert hits == [("yes", 0.1, 0.4)]  # the second piece's (0.3, 0.6) overlaps it
    assert cache.misses == 2
    spotting.spot(pieces, np.zeros(32_000, np.float32), 0.0, "s", Fake(), cache)
    assert cache.hits == 2 and cache.misses == 2


@pytest.fixture(scope="module")
def windows(media):
    starts = np.arange(0.0, media.script.duration - 8.0 + 1e-9, 3.0)
    return [media.window(float(s), float(s) + 8.0) for s in starts]


def test_results_do_not_depend_on_what_the_worker_decoded_before(windows):
    warm = BaselineModel("cpu", faces=False)
    in_order = [warm.analyze([w])[0] for w in windows]
    cold = BaselineModel("cpu", faces=False)
    for w, r in zip(windows, in_order, strict=True):
        cold.asr_cache = AsrCache()  # a worker that never saw this session
        assert cold.analyze([w])[0] == r
    media_s = windows[-1].end
    # the scripted speech is ~28 s of 38 s; windows every 3 s used to decode 1.3 s per media second
    assert warm.asr_cache.decoded_s / media_s < 1.05
