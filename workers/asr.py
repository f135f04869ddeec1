"""On-device speech recognition as a pluggable backend, spotted against the cue lexicon.

A backend turns one piece of speech (16 kHz mono float32) into lexicon hits:
``[(phrase, start_s, end_s), ...]`` relative to the piece. The model calls it
only on utterances its voice activity detection marked as speech (ASR is the
costly step, so silence is never decoded), cut into pieces with session-time
boundaries by :mod:`workers.spotting`, and caches the hits per session and
piece, so overlapping windows decode each utterance once.

Backends (``INTER1SRV_ASR`` environment variable, or ``BaselineModel(asr=...)``):

- ``pocketsphinx`` (default when the package is installed): keyphrase spotting
  with the en-us acoustic model and dictionary bundled in the ``pocketsphinx``
  wheel (no download). Free decoding of the default LM is ~0.5x real time and
  poor on synthetic speech; keyphrase spotting is ~0.03x real time. A phrase of
  ``n`` phones (cmudict) has the detection threshold
  ``1e-(KWS_PER_PHONE * (n - FREE_PHONES))`` = ``1e-(5 * (n - 4))``, at most ``1e-1``,
  and at most ``1e-10`` (``MIN_EXPONENT``) for a phrase of several words: short words
  ("no", "yes", "really", "maybe": 2-4 phones) get 1e-1, "pressure" 1e-5, "clearly"
  1e-10, "definitely" 1e-25, "frustrating" 1e-30, "i don't understand" 1e-50. Chosen
  with ``python -m workers.evaluation.keyphrases --sweep`` (every phrase in two carrier
  sentences that are not the main corpus's, 4 espeak-ng voices, 136 distractor
  sentences with near misses; 800 s of speech). Micro-averaged over the categories:

  ==============================================  =========  ======  =====  ================
  rule (per phone, free phones, phrase floor)     precision  recall  F1     false hits / min
  ==============================================  =========  ======  =====  ================
  1e-(1 * n), phrases <= 1e-10 (the rule before)  0.51       0.59    0.546  13.7
  1e-(2 * n), phrases <= 1e-10                    0.43       0.69    0.528  19.2
  1e-(1 * n), phrases <= 1e-25                    0.26       0.70    0.374  40.6
  1e-(3 * (n - 3))                                0.60       0.65    0.624  10.6
  1e-(5 * (n - 4))                                0.65       0.70    0.674  9.0
  1e-(5 * (n - 4)), phrases <= 1e-10 (chosen)     0.60       0.71    0.650  10.4
  ==============================================  =========  ======  =====  ================

  One exponent per phone was too strict for long words and phrases (never found:
  "tell me more"; rarely: "frustrating", "what do you mean", "definitely") and too
  loose for short ones. The phrase floor costs 0.024 F1 on the probe ("i think",
  "i agree" fire inside other words) but keeps the main corpus's slow "I think we
  could" (without it, uncertainty F1 there falls from 0.86 to 0.55). "really" fires in
  "review", "quarterly", "Berlin" even at 1e-0: no threshold fixes it (doubt_phrase
  precision 0.37); "worried", "pressure", "stressed" stay mostly unspotted. The rule was
  chosen on this probe, so its probe figures are not an independent test of it; the main
  corpus's table (README) is the check that did not take part in the choice, except for
  the phrase floor above.
- ``whisper:/path/to/model_dir``: a local faster-whisper (CTranslate2) model
  directory, if the user installed ``faster-whisper`` and has the weights;
  transcripts are matched against the lexicon with word timestamps.
- ``none``: no speech recognition (verbal evidence stays 0).
"""

from __future__ import annotations

import os
import re
import threading
from typing import Protocol

import numpy as np

from workers.lexicon import phrase_category
from workers.session_cache import SessionCache

# a phrase of n phones: threshold 1e-(KWS_PER_PHONE * (n - FREE_PHONES)), at most 1e-1 (module docstring)
KWS_PER_PHONE = 5.0
FREE_PHONES = 4
MIN_EXPONENT = 10  # multi-word phrases: threshold at most 1e-(MIN_EXPONENT)
SAMPLE_RATE = 16_000
# filled pauses ("um", "uh") are one or two phones: keyword spotting fires on every vowel
# (measured on the espeak corpus), so the pocketsphinx backend does not spot them; the
# paraverbal cue filled_pause measures them from the sound (workers.fillers)
KWS_SKIP = ("filler",)


class AsrBackend(Protocol):
    name: str

    def spot(self, audio: np.ndarray) -> list[tuple[str, float, float]]: ...


class NoAsr:
    name = "none"

    def spot(self, audio: np.ndarray) -> list[tuple[str, float, float]]:
        return []


def kws_exponent(phones: int, words: int, per_phone: float = KWS_PER_PHONE, free_phones: float = FREE_PHONES,
                 min_exponent: int = MIN_EXPONENT) -> int:
    """The exponent of a phrase's detection threshold ``1e-(exponent)`` (larger is looser) for a phrase
    of ``phones`` phones and ``words`` words."""
    exponent = max(1, int(round(per_phone * (phones - free_phones))))
    return max(exponent, min_exponent) if words > 1 else exponent


class PocketSphinxKws:
    """Keyphrase spotting over the lexicon with pocketsphinx's bundled en-us model."""

    name = "pocketsphinx-kws"

    def __init__(self, per_phone: float = KWS_PER_PHONE, *, free_phones: float = FREE_PHONES,
                 min_exponent: int = MIN_EXPONENT, decoder_options: dict | None = None) -> None:
        import pocketsphinx

        model = pocketsphinx.get_model_path()
        dict_path = os.path.join(model, "en-us", "cmudict-en-us.dict")
        phones: dict[str, int] = {}
        with open(dict_path, encoding="utf-8") as fh:
            for line in fh:
                parts = line.split()
                if parts and parts[0] not in phones:
                    phones[parts[0]] = len(parts) - 1
        self.thresholds: dict[str, int] = {}  # phrase -> exponent: threshold 1e-(exponent)
        for phrase, category in phrase_category().items():
            words = phrase.split()
            if category in KWS_SKIP or not all(w in phones for w in words):
                continue
            self.thresholds[phrase] = kws_exponent(sum(phones[w] for w in words), len(words), per_phone,
                                                   free_phones, min_exponent)
        lines = [f"{phrase} /1e-{exponent}/" for phrase, exponent in self.thresholds.items()]
        import tempfile

        fd, self._kws_path = tempfile.mkstemp(prefix="inter1srv-kws-", suffix=".txt")
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        # batch CMN: each region is normalised on its own, so hits do not depend on what was decoded before
        # decoder_options: other pocketsphinx settings (e.g. topn, ds), for the speed / quality probe only
        self._decoder = pocketsphinx.Decoder(kws=self._kws_path, samprate=SAMPLE_RATE, loglevel="FATAL", cmn="batch",
                                             **(decoder_options or {}))
        os.unlink(self._kws_path)  # read at init
        self._cmn0 = self._decoder.get_cmn()
        self._lock = threading.Lock()

    def spot(self, audio: np.ndarray) -> list[tuple[str, float, float]]:
        if audio.size < SAMPLE_RATE // 10:
            return []
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        with self._lock:
            d = self._decoder
            d.reinit_feat()  # fresh feature state and the same initial CMN for every region:
            d.set_cmn(self._cmn0)  # the hits of a region depend on that region only
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            hits = [(s.word.strip(), s.start_frame / 100.0, s.end_frame / 100.0) for s in (d.seg() or [])]
        return resolve_nested([h for h in hits if h[0] in phrase_category()])


def resolve_nested(hits: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Drop a hit overlapping a longer hit whose words contain it ("i think" inside "i don't think")."""
    out = []
    for p, s, e in hits:
        words = set(p.split())
        if any(len(q) > len(p) and words <= set(q.split()) and s < qe and qs < e for q, qs, qe in hits):
            continue
        out.append((p, s, e))
    return out


class WhisperBackend:
    """faster-whisper on a local model directory (optional; never downloads)."""

    name = "whisper"

    def __init__(self, model_dir: str) -> None:
        from faster_whisper import WhisperModel  # optional dependency

        if not os.path.isdir(model_dir):
            raise FileNotFoundError(model_dir)
        self._model = WhisperModel(model_dir, device="cpu", compute_type="int8", local_files_only=True)

    def spot(self, audio: np.ndarray) -> list[tuple[str, float, float]]:
        segments, _ = self._model.transcribe(audio, language="en", word_timestamps=True)
        words = [(re.sub(r"[^a-z']", "", w.word.lower()), w.start, w.end) for s in segments for w in (s.words or [])]
        out = []
        for phrase in phrase_category():
            parts = phrase.split()
            for i in range(len(words) - len(parts) + 1):
                if [w for w, _, _ in words[i:i + len(parts)]] == parts:
                    out.append((phrase, float(words[i][1]), float(words[i + len(parts) - 1][2])))
        return out


def make_backend(spec: str | None = None) -> AsrBackend:
    spec = spec if spec is not None else os.environ.get("INTER1SRV_ASR", "pocketsphinx")
    if spec in ("", "none", "off"):
        return NoAsr()
    if spec.startswith("whisper:"):
        return WhisperBackend(spec.split(":", 1)[1])
    if spec == "pocketsphinx":
        try:
            return PocketSphinxKws()
        except ImportError:
            return NoAsr()
    raise ValueError(f"unknown ASR backend {spec!r}")


class AsrCache(SessionCache[dict]):
    """session -> (piece start ms, piece end ms) -> hits in session seconds; LRU over sessions."""

    def __init__(self, max_sessions: int = 64) -> None:
        super().__init__(dict, max_sessions)
        self.decoded_s = 0.0

    def get(self, sid: str, key: tuple[int, int]):
        if sid not in self:
            return None
        return self.session(sid).get(key)

    def put(self, sid: str, key: tuple[int, int], hits: list) -> None:
        entry = self.session(sid)
        entry[key] = hits
        if len(entry) > 256:
            for k in sorted(entry)[: len(entry) - 256]:
                entry.pop(k, None)
