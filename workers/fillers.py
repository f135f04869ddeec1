"""Filled pauses ("uh", "um") measured from the sound, not from words.

Keyphrase spotting cannot find them (one or two phones match inside every vowel), so
the paraverbal cue ``filled_pause`` is acoustic. A filled pause is a held, neutral vowel
(optionally closed by a nasal): one voiced run of ``min_s``-``max_s`` seconds whose
pitch hardly moves and whose spectrum stays the same, set off from other speech by
silence (Shriberg 2001: prolonged, flat or gently falling F0; Clark & Fox Tree 2002).
Words differ: their consonant-vowel transitions move the spectrum (flux) and even one
spoken word carries an intonation contour of several semitones. A word drawn out on a
flat pitch ("sooo", "nooo") is a held vowel too, but it starts with a consonant, while
"uh", "um" and "er" start on the vowel.

A voiced run (20 ms hops, voiced as the voice-activity detector says) is a filled pause when

- its duration is within [``min_s``, ``max_s``] and it lies wholly inside the window's
  audio (a run cut by the window edge is not measured: the next window sees it whole);
- the standard deviation of its F0 (semitones around its median, onset and offset
  ``edge_hops`` hops left out) is at most ``max_pitch_sd_st``;
- the mean spectral flux over the same hops is at most ``max_flux``;
- at least ``min_gap_s`` of non-voiced audio precedes or follows it;
- it starts on its vowel: none of the ``onset_hops`` hops before it (the hop right before
  it left out: the vowel's first, partly voiced 20 ms) is ``onset_db`` above the window's
  voice-activity level yet unvoiced (a fricative, "h" or a stop burst: "so", "hmm"; a
  vowel's own soft onset stays below that), and the spectrum does not jump (flux >=
  ``onset_flux``) within its first ``onset_look`` hops after the first (a voiced
  consonant opening into the vowel: "no", "well").

The names are fields of :class:`FillerSettings` (defaults there). The cue's value is the
run's duration in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FillerSettings:
    """The ``fillers`` section of :class:`workers.thresholds.ModelSettings` (see the module docstring)."""

    min_s: float = 0.3
    max_s: float = 1.2
    edge_hops: int = 3
    max_pitch_sd_st: float = 0.6
    max_flux: float = 0.07
    min_gap_s: float = 0.2
    onset_hops: int = 4
    onset_look: int = 10
    onset_flux: float = 0.25
    onset_db: float = 10.0


def run_stats(f0: np.ndarray, flux: np.ndarray, s: int, e: int, edge: int) -> tuple[float, float]:
    """(F0 standard deviation in semitones, mean flux) of hops [s, e) without ``edge`` hops each side."""
    a, b = s + edge, e - edge
    if b - a < 3:
        a, b = s, e
    p = np.maximum(f0[a:b], 1.0)
    st = 12.0 * np.log2(p / np.median(p))
    return float(np.std(st)), float(np.mean(flux[a:b]))


def filled_pauses(runs: list[tuple[int, int]], valid: np.ndarray, f0: np.ndarray, flux: np.ndarray, hop: float,
                  cfg: FillerSettings = FillerSettings(), *, db: np.ndarray | None = None,
                  speech_db: float = np.inf) -> list[tuple[int, int]]:
    """The voiced runs (hop index pairs, in order) that are filled pauses; ``db`` per hop and the
    window's voice-activity level ``speech_db`` find a consonant just before a run."""
    n = valid.size
    gap = int(round(cfg.min_gap_s / hop))
    out = []
    for k, (s, e) in enumerate(runs):
        if not cfg.min_s - 1e-9 <= (e - s) * hop <= cfg.max_s + 1e-9:
            continue
        if s < 1 or e > n - 1 or not (valid[s - 1] and valid[e]):
            continue  # touches the window's audio edge: not measured whole here
        before = s - (runs[k - 1][1] if k > 0 else 0)
        after = (runs[k + 1][0] if k + 1 < len(runs) else n) - e
        if max(before if valid[max(0, s - gap):s].all() else 0, after if valid[e:e + gap].all() else 0) < gap:
            continue
        if db is not None and (db[max(0, s - 1 - cfg.onset_hops):max(0, s - 1)] > speech_db + cfg.onset_db).any():
            continue  # an unvoiced consonant leads into it
        if flux[s + 1:min(e, s + cfg.onset_look)].max(initial=0.0) >= cfg.onset_flux:
            continue  # a voiced consonant opens into the vowel
        sd, fl = run_stats(f0, flux, s, e, cfg.edge_hops)
        if sd <= cfg.max_pitch_sd_st and fl <= cfg.max_flux:
            out.append((s, e))
    return out
