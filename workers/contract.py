"""The model contract: what a worker feeds a model and what comes back.

A window is one slice of one session's media. The model returns a plain,
JSON-serialisable :class:`WindowResult` mapping (orjson-friendly: lists and
floats only, no numpy) so results cross the process boundary as small typed
control messages while media only ever crosses through shared memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypedDict

import numpy as np

SIGNAL_TYPES: tuple[str, ...] = (
    "agreement",
    "confidence",
    "confusion",
    "disagreement",
    "disengagement",
    "engagement",
    "frustration",
    "hesitation",
    "interest",
    "skepticism",
    "stress",
    "uncertainty",
)
CQI_DIMENSIONS: tuple[str, ...] = ("clarity", "authority", "energy", "rapport", "learning")
MODALITIES: tuple[str, ...] = ("verbal", "paraverbal", "nonverbal")
AUDIO_SAMPLE_RATE = 16_000
STEP_SECONDS = 0.5
# which part of the analysis workers do and which the sequencer adds: bumped when that split changes
# (2: the sequencer derives raised pitch / loudness and lean from the session baseline). Workers send
# it in their hello; the sequencer refuses a worker of another version (a SIGHUP reload replaces
# workers and frontends, not the sequencer: such an upgrade needs a full restart).
RESULT_CONTRACT = 2
# a cue is listed in ``WindowResult.drivers`` for a signal once its term in the score reaches this
DRIVER_MIN = 0.05


@dataclass
class WindowInput:
    """One analysis window, already read out of the session's media ring."""

    job_id: str
    session_id: str
    start: float  # media seconds, inclusive
    end: float  # media seconds, exclusive
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB at the analysis rate/size; T may be 0
    frame_times: np.ndarray  # (T,) float64 media seconds of each frame
    audio: np.ndarray  # (N,) float32 mono at AUDIO_SAMPLE_RATE in [-1, 1]; N may be 0
    audio_start: float  # media seconds of audio[0]


class Cue(TypedDict):
    """A measured cue episode: what was seen or heard, how strongly, when."""

    modality: str  # one of MODALITIES
    cue: str  # e.g. "voice_activity", "loudness", "pause", "motion_energy"
    value: float  # size of the cue in its own unit (documented per cue)
    start: float
    end: float


class CqiScore(TypedDict):
    value: float  # 0..100, 50 = no evidence either way
    weight: float  # 0..1 evidence weight for this window


class WindowResult(TypedDict):
    """Per-window model output (all times are session media seconds).

    - ``times``: start time of each step (``step`` seconds long) in [start, end)
    - ``signals``: for every signal in SIGNAL_TYPES, one score in [0, 1] per step
    - ``engagement`` / ``disengagement``: one score in [0, 1] per step
    - ``evidence``: per modality, per step, how much of that modality was
      actually observed (0 = not observed at all)
    - ``cues``: measured cue episodes inside the window
    - ``drivers``: for each signal, the cue names (``Cue.cue``) whose
      measurements raised its score; a signal never lists a cue absent from
      ``cues``
    - ``cqi``: the five CQI dimensions with evidence weights
    - ``degraded``: reasons a modality was missing or partial, each with the
      ranges affected, e.g. {"reason": "no_audio", "ranges": [[s, e]]}
    """

    start: float
    end: float
    step: float
    times: list[float]
    signals: dict[str, list[float]]
    engagement: list[float]
    disengagement: list[float]
    evidence: dict[str, list[float]]
    cues: list[Cue]
    drivers: dict[str, list[str]]
    cqi: dict[str, CqiScore]
    degraded: list[dict]


class Model(Protocol):
    """A batch model: windows in, one WindowResult per window out, same order."""

    name: str
    device: str

    def analyze(self, windows: list[WindowInput]) -> list[WindowResult]: ...
