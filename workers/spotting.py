"""Which speech a window sends to keyphrase spotting: each utterance decoded once per session.

Windows are 8 s every 3 s, so most speech is in two or three windows. Decoding each
window's voice-activity regions as clipped by that window would decode the same speech
again in every window that overlaps it (a region clipped at a window edge has new
boundaries in every window, so a cache keyed by them never hits). Instead, each window
cuts its speech into *pieces* whose boundaries are session times that do not depend on
the window, so a piece decoded once is a cache hit in every later window:

- an utterance (a voice-activity run, gaps < ``BRIDGE_S`` bridged) is *closed* at a side
  when the window shows at least ``BRIDGE_S`` of non-speech audio there (or the window
  starts at the session's start); its closed side is a stable boundary;
- an utterance is cut at grid points ``k * cut_grid_s + cut_phase_s`` of session time, at
  the quietest 20 ms hop within ``cut_search_s`` before the point (decided by the audio
  around it only, and only where the window holds all of that audio), at least
  ``min_piece_s`` from its closed ends; pieces overlap by ``overlap_s`` across a cut, so a
  phrase of up to twice that spanning it is whole in one of them. The defaults fit the
  server's 8 s windows every 3 s: a piece then ends (cut + overlap) on or just before a
  window's end, so the window that first holds a piece decodes it whole and the next
  windows reuse it; continuous speech costs 1.3-1.6 s of decoding per second, not 8/3;
- a piece that reaches the window's audio end while its utterance goes on (*open*) is
  decoded for this window, whose newest seconds need its words, and once more when a
  later window sees it closed (or cut);
- a piece that starts at the window's audio start while its utterance began earlier is
  a fragment whose words the earlier windows spotted whole: it is skipped when it ends
  ``lookback_s`` or more before the window's audio end (words there do not reach the
  contexts of the steps the sequencer commits from this window), decoded otherwise.

Hits from overlapping pieces are merged (same phrase, overlapping times: the first
piece's hit is kept). The plan is a function of the window's own audio only, so a
window gives the same hits on any worker, whatever that worker decoded before. The
lower-case names are fields of :class:`SpottingSettings` (defaults there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from workers.asr import AsrBackend, AsrCache, resolve_nested
from workers.signal_shapes import runs

SAMPLE_RATE = 16_000
BRIDGE_S = 0.3  # the voice-activity bridge (VoiceSettings.bridge_s): this much non-speech closes an utterance


@dataclass(frozen=True)
class Piece:
    """A span of session time to decode; ``core`` is the span without padding or overlap."""

    start: float
    end: float
    core: tuple[float, float]
    open_start: bool
    open_end: bool


@dataclass(frozen=True)
class SpottingSettings:
    """The ``spotting`` section of :class:`workers.thresholds.ModelSettings` (see the module docstring)."""

    pad_s: float = 0.15  # audio added before and after an utterance (within the window's audio)
    min_utterance_s: float = 0.18  # shorter speech runs are not decoded
    cut_grid_s: float = 3.0
    cut_phase_s: float = 1.6
    cut_search_s: float = 0.3
    min_piece_s: float = 1.0  # a cut stays this far from an utterance's closed ends
    overlap_s: float = 0.4
    lookback_s: float = 5.0


def plan(active: np.ndarray, valid: np.ndarray, db: np.ndarray, t0: float, hop: float, audio_end: float, *,
         session_start: bool, bridge_s: float = BRIDGE_S, cfg: SpottingSettings = SpottingSettings()) -> list[Piece]:
    """Pieces of the window's speech (``active`` per hop from ``t0``, its gaps shorter than ``bridge_s``
    bridged), in time order, skipped ones left out."""
    n = active.size
    bridge = max(1, int(round(bridge_s / hop)))
    search = int(round(cfg.cut_search_s / hop))
    pieces: list[Piece] = []
    for s, e in runs(active):
        if (e - s) * hop < cfg.min_utterance_s - 1e-9:
            continue
        open_start = not (session_start and s == 0) and not (s >= bridge and bool(valid[s - bridge:s].all()))
        open_end = not (e + bridge <= n and bool(valid[e:e + bridge].all()))
        rs, re_ = t0 + s * hop, t0 + e * hop
        cuts: list[float] = []
        lo = rs + (0.0 if open_start else cfg.min_piece_s)
        hi = re_ - (0.0 if open_end else cfg.min_piece_s)
        k0 = math.ceil((lo - cfg.cut_phase_s) / cfg.cut_grid_s)
        for k in range(k0, math.floor((hi - cfg.cut_phase_s) / cfg.cut_grid_s) + 1):
            c = int(round((k * cfg.cut_grid_s + cfg.cut_phase_s - t0) / hop))  # hop boundary nearest the point
            i0 = c - search
            if i0 < s or c > e or not valid[i0:c].all():
                continue  # the window does not hold all the audio that decides this cut
            q = i0 + int(np.argmin(db[i0:c]))
            cuts.append(t0 + (q + 0.5) * hop)
        bounds = [rs, *cuts, re_]
        for i in range(len(bounds) - 1):
            first, last = i == 0, i == len(bounds) - 2
            a = bounds[i] - (cfg.pad_s if first else cfg.overlap_s)
            b = bounds[i + 1] + (cfg.pad_s if last else cfg.overlap_s)
            piece = Piece(round(max(t0, a), 3), round(min(audio_end, b), 3), (bounds[i], bounds[i + 1]),
                          first and open_start, last and open_end)
            if piece.open_start and not piece.open_end and bounds[i + 1] <= audio_end - cfg.lookback_s + 1e-9:
                continue  # a fragment the earlier windows decoded whole
            if piece.end - piece.start > 1e-3:
                pieces.append(piece)
    return pieces


def spot(pieces: list[Piece], audio: np.ndarray, a0: float, session_id: str, backend: AsrBackend,
         cache: AsrCache) -> list[tuple[str, float, float]]:
    """Lexicon hits (phrase, start, end in session seconds) of the pieces, decoded once per session."""
    hits: list[tuple[str, float, float]] = []
    for p in pieces:
        key = (int(round(p.start * 1000)), int(round(p.end * 1000)))
        found = cache.get(session_id, key)
        if found is None:
            cache.misses += 1
            i0 = max(0, int(round((p.start - a0) * SAMPLE_RATE)))
            i1 = max(i0, int(round((p.end - a0) * SAMPLE_RATE)))
            found = [(ph, p.start + hs, p.start + he) for ph, hs, he in backend.spot(np.asarray(audio[i0:i1]))]
            cache.decoded_s += p.end - p.start
            cache.put(session_id, key, found)
        else:
            cache.hits += 1
        for h in found:
            if not any(q[0] == h[0] and q[1] < h[2] and h[1] < q[2] for q in hits):
                hits.append(h)
    return resolve_nested(hits)


def decoded_coverage(pieces: list[Piece]) -> list[tuple[float, float]]:
    """The utterance spans whose words this window reports (piece cores), for verbal evidence."""
    return [p.core for p in pieces]

