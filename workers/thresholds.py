"""Cue thresholds and signal hysteresis: one typed settings object the operator can override.

Defaults are the values the evaluation table was measured with. An operator changes
them with a JSON or TOML file named by ``INTER1SRV_MODEL_SETTINGS`` (read once per
process: the workers read the cue sections, the sequencer ``signals`` and ``baseline``, so
restart the server after editing it). Only the keys given change; an unknown section
or key, a value of the wrong type or out of range, or an inconsistent pair (an
``off_threshold`` above the ``on_threshold``) is refused with an error naming the file
and the key. Example (TOML)::

    [voice]
    voicing_min = 0.55          # stricter voicing: noisier rooms

    [signals]
    on_threshold = 0.65
    off_threshold = 0.45
    min_on_steps = 3

Sections: ``voice`` (voice activity, pauses, silences), ``prosody`` (rising pitch,
speech rate), ``fillers`` (:mod:`workers.fillers`), ``spotting``
(:mod:`workers.spotting`), ``face`` (:class:`workers.face.FaceSettings`: turned / absent,
nods and shakes, look-away, head tilt, smile), ``motion`` (the frame-difference cues of
:mod:`workers.baseline`: motion energy chunks, stillness, vertical / horizontal
oscillation), ``signals`` (the sequencer's on/off thresholds, hysteresis steps,
probability bands and engagement states) and ``baseline`` (the speaker's usual pitch and
loudness that raised pitch and loudness are measured against, and the lean ratios against
the usual face size:
:mod:`workers.session_baseline`).

Left as module constants, not settings: cost knobs and detector internals (the face
trackers' detection cadences ``DETECT_EVERY`` / ``FULL_EVERY``, Haar's template-tracking
score, minimum face size, the per-session cache sizes, the chain gap ``MAX_GAP_S`` that
the cache's chains depend on, MTCNN's landmark-to-face-size calibration) and the
evidence / coverage bookkeeping of :mod:`workers.baseline` (``FRAME_HOLD_S``,
``VIDEO_GAP_S``, ``AUDIO_GAP_S``: what counts as missing media, not a cue threshold).
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass, replace
from functools import lru_cache
from typing import Any

from workers.face import FaceSettings
from workers.fillers import FillerSettings
from workers.session_baseline import SessionBaselineSettings
from workers.spotting import SpottingSettings

ENV = "INTER1SRV_MODEL_SETTINGS"


@dataclass(frozen=True)
class VoiceSettings:
    """Voice activity per 20 ms hop (see :mod:`workers.baseline`) and the pauses between speech."""

    voicing_min: float = 0.5  # normalised autocorrelation peak of a voiced hop
    floor_percentile: float = 0.10  # the window's noise floor: this quantile of its hop levels
    floor_cap_db: float = -40.0
    above_floor_db: float = 10.0  # speech is this far above the floor...
    min_threshold_db: float = -50.0  # ...and never below this level
    min_voiced_hops: int = 3  # shorter voiced runs are dropped
    bridge_s: float = 0.3  # gaps shorter than this inside speech are not pauses
    long_silence_s: float = 2.0
    chunk_s: float = 2.0  # speech regions are reported in chunks of at most this
    min_stats_hops: int = 5  # voiced hops before loudness / pitch variation is reported


@dataclass(frozen=True)
class ProsodySettings:
    rise_st: float = 2.0  # semitones: an utterance's last voiced hops over the dip before them
    rise_tail: int = 4  # voiced hops at the end of the utterance
    rise_look: int = 25  # the dip is searched in the last this-many voiced hops
    rise_min_hops: int = 30  # voiced hops in the utterance
    nucleus_db: float = 3.0  # a syllable nucleus: a level peak this far above the dips around it
    nucleus_gap_s: float = 0.1
    min_rate_s: float = 0.8  # speech seconds in a chunk before its rate is reported


@dataclass(frozen=True)
class MotionSettings:
    """Frame-difference cues per 0.1 s of 80x60 grey frames (see :mod:`workers.baseline`)."""

    max_pair_dt: float = 0.5  # s: consecutive frames further apart than this are not compared
    chunk_s: float = 2.0  # motion_energy (and oscillation) episodes: runs of frame pairs cut into chunks
    still_level: float = 0.6  # grey levels per pixel: motion_energy below this is still (and scores 0)
    min_still_s: float = 1.0  # stillness episodes
    osc_min_rms: float = 1.0  # px (80x60) per 0.1 s: the moving region's velocity
    osc_axis_ratio: float = 3.0  # energy along the axis over energy across it
    osc_min_hz: float = 1.5
    osc_max_hz: float = 4.5


@dataclass
class AnalysisSettings:
    """Thresholds of the sequencer's signal, engagement and feedback logic."""

    on_threshold: float = 0.6
    off_threshold: float = 0.4
    min_on_steps: int = 2
    min_off_steps: int = 2
    band_high: float = 0.75
    band_medium: float = 0.55
    engaged_on: float = 0.6
    disengaged_on: float = 0.6
    state_min_steps: int = 4
    feedback_every_windows: int = 2
    # an active signal moves down a band only once its score is this far below the boundary
    band_margin: float = 0.03
    # the current engagement state is kept until its score drops this far below its threshold
    state_margin: float = 0.1
    # at most this many cues are attached to one signal event
    max_event_cues: int = 12


@dataclass(frozen=True)
class ModelSettings:
    voice: VoiceSettings = field(default_factory=VoiceSettings)
    prosody: ProsodySettings = field(default_factory=ProsodySettings)
    fillers: FillerSettings = field(default_factory=FillerSettings)
    spotting: SpottingSettings = field(default_factory=SpottingSettings)
    face: FaceSettings = field(default_factory=FaceSettings)
    motion: MotionSettings = field(default_factory=MotionSettings)
    signals: AnalysisSettings = field(default_factory=AnalysisSettings)
    baseline: SessionBaselineSettings = field(default_factory=SessionBaselineSettings)


# settings of earlier versions: what became of them (an operator's file that still has one is refused with this)
MOVED = {
    "face.lean_in": "moved to baseline.lean_in (lean is measured against the session's usual face size)",
    "face.lean_back": "moved to baseline.lean_back (lean is measured against the session's usual face size)",
    "face.lean_min_s": "moved to baseline.lean_min_s (lean is measured against the session's usual face size)",
    "face.lean_ref_s": "is gone: lean is measured against the session's usual face size (baseline section)",
    "face.lean_ref_min_frames": "is gone: lean is measured against the session's usual face size (baseline section)",
}


class ModelSettingsError(ValueError):
    """An operator's settings file that cannot be used (the message says where and why)."""


UNIT = {  # fields whose value is a fraction or score in [0, 1]
    "voicing_min", "floor_percentile", "on_threshold", "off_threshold", "band_high", "band_medium",
    "engaged_on", "disengaged_on", "band_margin", "state_margin", "max_flux",
    "skin_turned", "skin_global", "count_min_score", "smile_min_prob",
}
ANY_SIGN = {"floor_cap_db", "min_threshold_db", "above_floor_db"}  # levels in dB may be negative


def _check_value(where: str, section: str, key: str, default: Any, value: Any) -> Any:
    name = f"{section}.{key}"
    if isinstance(default, bool) or isinstance(value, bool):
        raise ModelSettingsError(f"{where}: {name} must be a number, not {value!r}")
    if isinstance(default, int):
        if not isinstance(value, int):
            raise ModelSettingsError(f"{where}: {name} must be a whole number, not {value!r}")
    elif not isinstance(value, int | float) or not math.isfinite(value):
        raise ModelSettingsError(f"{where}: {name} must be a finite number, not {value!r}")
    if key in UNIT and not 0.0 <= value <= 1.0:
        raise ModelSettingsError(f"{where}: {name} must be within [0, 1], not {value!r}")
    if key not in ANY_SIGN and value < 0:
        raise ModelSettingsError(f"{where}: {name} must not be negative, not {value!r}")
    return float(value) if isinstance(default, float) else value


def _check_pairs(where: str, s: ModelSettings) -> None:
    sig, fil, sp, fa, mo = s.signals, s.fillers, s.spotting, s.face, s.motion
    pairs = [
        (sig.off_threshold <= sig.on_threshold, "signals.off_threshold must not exceed signals.on_threshold"),
        (sig.band_medium <= sig.band_high, "signals.band_medium must not exceed signals.band_high"),
        (sig.min_on_steps >= 1 and sig.min_off_steps >= 1 and sig.state_min_steps >= 1,
         "signals.min_on_steps, min_off_steps and state_min_steps must be at least 1"),
        (sig.feedback_every_windows >= 1, "signals.feedback_every_windows must be at least 1"),
        (fil.min_s < fil.max_s, "fillers.min_s must be below fillers.max_s"),
        (sp.cut_grid_s > 0, "spotting.cut_grid_s must be positive"),
        (sp.cut_search_s >= 0.02, "spotting.cut_search_s must be at least one 20 ms hop"),
        (s.voice.chunk_s >= 0.1 and s.voice.long_silence_s > 0, "voice.chunk_s and voice.long_silence_s must be positive"),
        (sig.max_event_cues >= 1, "signals.max_event_cues must be at least 1"),
        (s.prosody.rise_tail < s.prosody.rise_look <= s.prosody.rise_min_hops,
         "prosody.rise_tail < prosody.rise_look <= prosody.rise_min_hops is required"),
        (fa.nod_min_hz < fa.nod_max_hz, "face.nod_min_hz must be below face.nod_max_hz"),
        (s.baseline.lean_back < 1.0 < s.baseline.lean_in, "baseline.lean_back must be below 1 and baseline.lean_in above 1"),
        (fa.tilt_min_deg <= 90.0, "face.tilt_min_deg must be within [0, 90]"),
        (fa.chunk_s > 0, "face.chunk_s must be positive"),
        (fa.smile_min_prob > 0 and fa.smile_min_s > 0, "face.smile_min_prob and face.smile_min_s must be positive"),
        (s.baseline.pitch_lo_st < s.baseline.pitch_hi_st and s.baseline.loudness_lo_db < s.baseline.loudness_hi_db,
         "baseline.pitch_lo_st must be below pitch_hi_st and loudness_lo_db below loudness_hi_db"),
        (0 < s.baseline.min_reference_s <= s.baseline.reference_s,
         "baseline.min_reference_s must be positive and not exceed baseline.reference_s"),
        (mo.osc_min_hz < mo.osc_max_hz, "motion.osc_min_hz must be below motion.osc_max_hz"),
        (mo.max_pair_dt > 0 and mo.chunk_s > 0, "motion.max_pair_dt and motion.chunk_s must be positive"),
    ]
    for ok, message in pairs:
        if not ok:
            raise ModelSettingsError(f"{where}: {message}")


def from_mapping(data: Any, where: str = "model settings") -> ModelSettings:
    """Defaults overridden by ``{section: {key: value}}``, validated."""
    base = ModelSettings()
    if not isinstance(data, dict):
        raise ModelSettingsError(f"{where}: expected a table of sections, got {type(data).__name__}")
    sections = {f.name: getattr(base, f.name) for f in fields(base)}
    out: dict[str, Any] = {}
    for section, values in data.items():
        if section not in sections:
            raise ModelSettingsError(f"{where}: unknown section {section!r} (known: {', '.join(sections)})")
        if not isinstance(values, dict):
            raise ModelSettingsError(f"{where}: section {section!r} must be a table of settings")
        current = sections[section]
        assert is_dataclass(current)
        known = {f.name: getattr(current, f.name) for f in fields(current)}
        changes = {}
        for key, value in values.items():
            if key not in known:
                if f"{section}.{key}" in MOVED:
                    raise ModelSettingsError(f"{where}: {section}.{key} {MOVED[f'{section}.{key}']}")
                raise ModelSettingsError(f"{where}: unknown setting {section}.{key} (known: {', '.join(known)})")
            changes[key] = _check_value(where, section, key, known[key], value)
        out[section] = replace(current, **changes)
    settings = replace(base, **out)
    _check_pairs(where, settings)
    return settings


def load(path: str | None = None) -> ModelSettings:
    """The settings of ``path`` (JSON, or TOML by its ``.toml`` suffix), or the defaults when None."""
    if not path:
        return ModelSettings()
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ModelSettingsError(f"{ENV}={path}: cannot read it ({exc.strerror or exc})") from exc
    try:
        data = tomllib.loads(raw.decode()) if path.endswith(".toml") else json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise ModelSettingsError(f"{path}: not valid {'TOML' if path.endswith('.toml') else 'JSON'}: {exc}") from exc
    return from_mapping(data, path)


@lru_cache(maxsize=4)
def _cached(path: str) -> ModelSettings:
    return load(path)


def model_settings() -> ModelSettings:
    """This process's settings: ``$INTER1SRV_MODEL_SETTINGS`` or the defaults (read once per path)."""
    return _cached(os.environ.get(ENV, ""))
