"""Precision and recall of the acoustic ``filled_pause`` cue on espeak-ng speech (audio only).

    python -m workers.evaluation.fillers

The main corpus has two scripted fillers, too few to measure a cue; this clip has
more: filled pauses ("um", "uh", "er": a held vowel on a flat pitch, see
:data:`workers.evaluation.corpus.FILLED_PAUSE`) at three voices, alone and between the
words of sentences, among ordinary words and sentences said at a normal rate (short
answers, hedges, vowel-only words like "oh", "so", "no"). A detection is correct when
it overlaps a scripted filler (0.3 s slack). Drawn-out monosyllables said the same
way ("sooo", "nooo": held and flat) are reported apart: acoustically they are filled
pauses, and the cue finds them too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SLACK_S = 0.3
VOICES = ((150, 40), (170, 55), (190, 70))  # (words per minute, espeak pitch 0-99)
FILLERS = ("~um", "~uh", "~er")
ORDINARY = (
    "Yes.", "No.", "Oh,", "So,", "Well,", "Okay.", "Right.", "Sure.", "Really?", "Maybe.", "Ah, I see.",
    "I think so.", "Sort of.", "Let me see.", "We could try it.", "Now, where was I?", "I know.",
    "Hmm, interesting.", "All of them.", "Go on.", "Over there.", "You know,", "I mean,", "Of course.",
)
# a filler between the words of a sentence: (before, filler, after)
INLINE = (("I was going to,", "~uh", "say something."), ("We need,", "~um", "more time."),
          ("It is,", "~er", "complicated."), ("Let me,", "~um", "check that."))
DRAWN_OUT = ("~so", "~no", "~oh", "~well")


@dataclass
class FillerProbe:
    detected: int
    correct: int
    labelled: int
    found: int
    drawn_out: int
    drawn_out_flagged: int
    seconds: float

    @property
    def precision(self) -> float:
        return self.correct / self.detected if self.detected else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.labelled if self.labelled else 1.0


def build(seed: int = 5) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """(16 kHz audio, labelled items (kind, start, end)) with kind filler / ordinary / drawn_out."""
    from workers.evaluation.corpus import SR, Seg, _espeak

    rng = np.random.default_rng(seed)
    items: list[tuple[str, str]] = []
    for speed, pitch in VOICES:
        seq: list[tuple[str, str]] = [(f, "filler") for f in FILLERS] + [(w, "ordinary") for w in ORDINARY]
        seq += [(w, "drawn_out") for w in DRAWN_OUT]
        rng.shuffle(seq)
        items += [(f"{speed}:{pitch}:{t}", k) for t, k in seq]
        for before, filler, after in INLINE:
            items += [(f"{speed}:{pitch}:{before}", "ordinary"), (f"{speed}:{pitch}:{filler}", "filler"),
                      (f"{speed}:{pitch}:{after}", "ordinary")]
    parts, labels, t = [np.zeros(SR // 2, np.float32)], [], 0.5
    for spec, kind in items:
        speed, pitch, text = spec.split(":", 2)
        x = _espeak(text, Seg("probe", 0, "still", speed=int(speed), pitch=int(pitch)))
        labels.append((kind, t, t + x.size / SR))
        gap = float(rng.uniform(0.25, 0.7))
        parts += [x, np.zeros(int(gap * SR), np.float32)]
        t += x.size / SR + gap
    audio = np.concatenate(parts)
    audio += (rng.standard_normal(audio.size) * 10 ** (-60 / 20)).astype(np.float32)
    n16 = int(round(audio.size * 16_000 / SR))
    return np.interp(np.arange(n16) * (SR / 16_000), np.arange(audio.size), audio).astype(np.float32), labels


def probe(model=None) -> FillerProbe:
    from workers.baseline import BaselineModel
    from workers.contract import WindowInput

    model = model or BaselineModel("cpu", asr="none", faces=False)
    audio, labels = build()
    seconds = audio.size / 16_000
    cues: dict[float, dict] = {}
    start = 0.0
    empty = np.zeros((0, 240, 320, 3), np.uint8)
    while start + 8.0 <= seconds:
        i0, i1 = int(start * 16_000), int((start + 8.0) * 16_000)
        (r,) = model.analyze([WindowInput("p", "filler-probe", start, start + 8.0, empty, np.zeros(0),
                                          audio[i0:i1], start)])
        for c in r["cues"]:
            if c["cue"] == "filled_pause":
                cues[round(c["start"], 1)] = c
        start += 3.0

    def hits(c: dict, kind: str) -> bool:
        return any(k == kind and s - SLACK_S < c["end"] and c["start"] < e + SLACK_S for k, s, e in labels)

    fill = [(s, e) for k, s, e in labels if k == "filler"]
    drawn = [(s, e) for k, s, e in labels if k == "drawn_out"]
    found = sum(any(s - SLACK_S < c["end"] and c["start"] < e + SLACK_S for c in cues.values()) for s, e in fill)
    flagged = sum(any(s - SLACK_S < c["end"] and c["start"] < e + SLACK_S for c in cues.values()) for s, e in drawn)
    not_drawn = [c for c in cues.values() if not hits(c, "drawn_out")]
    return FillerProbe(detected=len(not_drawn), correct=sum(hits(c, "filler") for c in not_drawn),
                       labelled=len(fill), found=found, drawn_out=len(drawn), drawn_out_flagged=flagged,
                       seconds=round(seconds, 1))


def main() -> None:
    p = probe()
    print(f"filled_pause on {p.seconds:.0f} s of espeak-ng speech: {p.detected} detected (drawn-out words aside), "
          f"{p.correct} on a scripted filler: precision {p.precision:.2f}; {p.found} of {p.labelled} fillers "
          f"found: recall {p.recall:.2f}; drawn-out flat monosyllables flagged: {p.drawn_out_flagged} of "
          f"{p.drawn_out}")


if __name__ == "__main__":
    main()
