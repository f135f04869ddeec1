"""Precision and recall of keyphrase spotting (:class:`workers.asr.PocketSphinxKws`) per lexicon category.

    python -m workers.evaluation.keyphrases            # the chosen rule, per category
    python -m workers.evaluation.keyphrases --sweep    # the threshold rules compared
    python -m workers.evaluation.keyphrases --decoder topn=2   # a pocketsphinx setting: quality and CPU

The main corpus says each lexicon phrase at most once, in one voice: too few to choose
detection thresholds, and choosing them on it would fit the table it reports. This probe
says every lexicon phrase (fillers aside: the acoustic cue ``filled_pause`` measures them)
inside carrier sentences of ordinary business talk that are not sentences of the main
corpus script (:data:`workers.evaluation.corpus.SCRIPT`), at several espeak-ng voices
(voice variant, speed, pitch), and distractor sentences that hold no lexicon phrase:
plain business talk and near misses ("thinking", "yesterday", "notice", "mean time",
"pressed", "sure thing", "frustration", ...). Each sentence is spotted on its own, 16 kHz
with 0.15 s of silence either side, as :mod:`workers.spotting` sends an utterance to the
backend (without the Opus round trip of the main corpus).

Scoring: a hit is correct when the same phrase is scripted in that sentence and the hit
overlaps the phrase's time with 0.3 s slack. The phrase's time is estimated by
synthesising the words before it, and the words up to its end, alone with the same
voice (espeak-ng lengthens a sentence's last word, so the estimate runs late by up to
~0.1 s; the slack covers it). Per category: precision (correct hits / hits, hits in
distractors included), recall (scripted phrases found / scripted), false hits per minute
of distractor speech.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from workers.lexicon import LEXICON, phrase_category
from workers.spotting import SpottingSettings

SR = 16_000
SLACK_S = 0.3
PAD_S = SpottingSettings().pad_s  # silence either side of a sentence, as the server pads an utterance
SKIP = ("filler",)
# (espeak-ng voice, words per minute, pitch 0-99): the main corpus uses en-us at 125-215 wpm
VOICES: tuple[tuple[str, int, int], ...] = (
    ("en-us", 160, 50),
    ("en-us+m3", 140, 35),
    ("en-us+f2", 185, 70),
    ("en-us+m1", 210, 45),
)
# two carrier sentences per phrase, none of them a sentence of the main corpus script
CARRIERS: dict[str, tuple[str, str]] = {
    "maybe": ("We could maybe move the launch to Friday.", "Maybe the client will call back tomorrow."),
    "i think": ("I think the budget covers the travel costs.", "The slides are ready, I think."),
    "sort of": ("The new layout is sort of cluttered.", "It was sort of a surprise for the team."),
    "kind of": ("The report is kind of long for a summary.", "That meeting was kind of a waste of time."),
    "probably": ("We will probably finish the draft on Monday.", "Probably the vendor sent the wrong invoice."),
    "i guess": ("I guess the numbers look fine for now.", "The server went down overnight, I guess."),
    "perhaps": ("Perhaps we should hire another designer.", "The shipment is perhaps delayed by the weather."),
    "yes": ("Yes, the contract was signed last week.", "Yes, send me the files."),
    "exactly": ("That is exactly what the customer asked for.", "Exactly, the deadline is in June."),
    "i agree": ("I agree with the proposal from finance.", "On the pricing, I agree with Sarah."),
    "absolutely": ("Absolutely, we can start next month.", "The data is absolutely correct."),
    "that's right": ("That's right, the office moves in May.", "The total is four hundred, that's right."),
    "no": ("No, the printer is still broken.", "There is no room in the schedule."),
    "i don't think": ("I don't think the budget will stretch that far.", "We need more staff, I don't think we can wait."),
    "actually": ("Actually, the meeting starts at ten.", "The figures are actually higher this year."),
    "i disagree": ("I disagree with the new travel policy.", "On this point I disagree with the board."),
    "what do you mean": ("What do you mean by a flexible deadline?", "Sorry, what do you mean by that?"),
    "i don't understand": ("I don't understand the new billing system.", "Honestly, I don't understand these charts."),
    "i'm confused": ("I'm confused about the shipping dates.", "With all these versions I'm confused."),
    "really": ("Did the supplier really cancel the order?", "The demo went really well."),
    "are you sure": ("Are you sure the invoice was paid?", "The room is booked, are you sure?"),
    "i doubt": ("I doubt the vendor can deliver on time.", "Frankly, I doubt they will sign today."),
    "frustrating": ("The login problem is frustrating for our users.", "It is frustrating to wait for approval."),
    "worried": ("The team is worried about the layoffs.", "She seemed worried during the call."),
    "pressure": ("The sales team is under pressure this month.", "There is a lot of pressure from the investors."),
    "stressed": ("Everyone is stressed before the audit.", "He sounded stressed on the phone."),
    "tell me more": ("Tell me more about the new product line.", "That sounds promising, tell me more."),
    "interesting": ("The survey results are interesting.", "What an interesting idea for the campaign."),
    "how does": ("How does the pricing model work?", "How does the team track its hours?"),
    "definitely": ("We will definitely need more servers.", "Definitely, the contract ends in March."),
    "clearly": ("The chart clearly shows the growth.", "Clearly, the old process was too slow."),
    "certainly": ("We can certainly help with the migration.", "Certainly, the report goes out today."),
}
# sentences without a lexicon phrase: plain business talk, then near misses of lexicon phrases
DISTRACTORS: tuple[str, ...] = (
    "Let us review the quarterly numbers.", "The invoice goes out on Thursday.",
    "Please send the slides before lunch.", "Our team finished the migration last night.",
    "The customer wants a discount on the license.", "We moved the meeting to the large room.",
    "The new hire starts on the first of the month.", "Shipping costs went up by ten percent.",
    "Can you share your screen for a moment?", "The server logs are stored for thirty days.",
    "I was thinking about the marketing plan.", "Yesterday the board approved the budget.",
    "Did you notice the change in the logo?", "Nobody read the second chapter.",
    "In the mean time, we keep the old version.", "He pressed the button twice.",
    "Sure thing, I will book the flight.", "The actual cost was lower.",
    "We need the exact figures by Friday.", "The agreement was signed in Berlin.",
    "Interest rates rose again in spring.", "The instructions were clear and short.",
    "We are certain of the delivery date.", "The final plan is not definite yet.",
    "A kind customer left a review.", "Please sort the files by date.",
    "Tell me the price of the upgrade.", "How do we reach the new office?",
    "His guess was close to the real number.", "The frustration in the team is growing.",
    "Do not worry about the invoice.", "The document was confusing to read.",
    "She expressed her doubts about the plan.", "Our understanding of the market grew.",
)


def words_of(text: str) -> list[str]:
    return "".join(ch if ch.isalnum() or ch in "' " else " " for ch in text.lower()).split()


def phrases_in(text: str) -> list[tuple[str, int]]:
    """Lexicon phrases (fillers aside) in ``text`` with the index of their first word."""
    words = words_of(text)
    out = []
    for phrase, cat in phrase_category().items():
        if cat in SKIP:
            continue
        p = phrase.split()
        out += [(phrase, i) for i in range(len(words) - len(p) + 1) if words[i:i + len(p)] == p]
    return out


def say(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng speech of ``text`` at 16 kHz, trimmed to its sound."""
    from workers.evaluation.corpus import espeak_audio

    return espeak_audio(text, voice=voice, speed=speed, pitch=pitch, rate=SR)


@dataclass
class Utterance:
    text: str
    voice: tuple[str, int, int]
    audio: np.ndarray  # 16 kHz, PAD_S of silence either side
    labels: list[tuple[str, float, float]]  # (phrase, start, end) in the utterance's time

    @property
    def speech_s(self) -> float:
        return self.audio.size / SR - 2 * PAD_S


def utterance(text: str, voice: tuple[str, int, int], rng: np.random.Generator) -> Utterance:
    x = say(text, *voice)
    words = words_of(text)
    labels = []
    for phrase, i in phrases_in(text):
        n = len(phrase.split())
        start = say(" ".join(words[:i]), *voice).size / SR if i else 0.0
        end = say(" ".join(words[:i + n]), *voice).size / SR if i + n < len(words) else x.size / SR
        labels.append((phrase, PAD_S + start, PAD_S + max(end, start + 0.1)))
    pad = np.zeros(int(PAD_S * SR), np.float32)
    audio = np.concatenate([pad, x, pad])
    audio += (rng.standard_normal(audio.size) * 10 ** (-60 / 20)).astype(np.float32)
    return Utterance(text, voice, audio, labels)


def build(voices: Sequence[tuple[str, int, int]] = VOICES, carriers: int = 2,
          distractors: Sequence[str] = DISTRACTORS, seed: int = 7) -> list[Utterance]:
    """Every phrase in ``carriers`` carrier sentences and every distractor, at every voice."""
    rng = np.random.default_rng(seed)
    texts = [c for cs in CARRIERS.values() for c in cs[:carriers]] + list(distractors)
    return [utterance(t, v, rng) for v in voices for t in texts]


@dataclass
class CategoryScore:
    hits: int = 0
    correct: int = 0
    labelled: int = 0
    found: int = 0
    distractor_hits: int = 0

    @property
    def precision(self) -> float:
        return self.correct / self.hits if self.hits else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.labelled if self.labelled else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class KeyphraseProbe:
    categories: dict[str, CategoryScore]
    distractor_s: float
    speech_s: float
    missed: dict[str, int] = field(default_factory=dict)  # phrase -> scripted occurrences not found
    false: dict[str, int] = field(default_factory=dict)  # phrase -> wrong hits

    @property
    def total(self) -> CategoryScore:
        t = CategoryScore()
        for c in self.categories.values():
            t.hits += c.hits
            t.correct += c.correct
            t.labelled += c.labelled
            t.found += c.found
            t.distractor_hits += c.distractor_hits
        return t

    def false_per_min(self, c: CategoryScore) -> float:
        return c.distractor_hits / (self.distractor_s / 60.0) if self.distractor_s else 0.0

    def table(self) -> str:
        lines = ["| category | scripted | found | hits | correct | precision | recall | F1 | false hits / min |",
                 "|---|---|---|---|---|---|---|---|---|"]
        rows = [*self.categories.items(), ("all", self.total)]
        for name, c in rows:
            lines.append(f"| {name} | {c.labelled} | {c.found} | {c.hits} | {c.correct} | {c.precision:.2f} | "
                         f"{c.recall:.2f} | {c.f1:.2f} | {self.false_per_min(c):.2f} |")
        return "\n".join(lines)


def score(utterances: Sequence[Utterance], spot: Callable[[np.ndarray], list[tuple[str, float, float]]]
          ) -> KeyphraseProbe:
    cat_of = phrase_category()
    cats = {c: CategoryScore() for c in LEXICON if c not in SKIP}
    missed: dict[str, int] = {}
    false: dict[str, int] = {}
    distractor_s = 0.0
    for u in utterances:
        hits = spot(u.audio)
        if not u.labels:
            distractor_s += u.speech_s
        for phrase, s, e in u.labels:
            c = cats[cat_of[phrase]]
            c.labelled += 1
            if any(p == phrase and s - SLACK_S < he and hs < e + SLACK_S for p, hs, he in hits):
                c.found += 1
            else:
                missed[phrase] = missed.get(phrase, 0) + 1
        for p, hs, he in hits:
            if cat_of.get(p) not in cats:
                continue
            c = cats[cat_of[p]]
            c.hits += 1
            if any(q == p and s - SLACK_S < he and hs < e + SLACK_S for q, s, e in u.labels):
                c.correct += 1
            else:
                false[p] = false.get(p, 0) + 1
                if not u.labels:
                    c.distractor_hits += 1
    return KeyphraseProbe(cats, round(distractor_s, 1), round(sum(u.speech_s for u in utterances), 1),
                          missed, false)


def probe(backend=None, utterances: Sequence[Utterance] | None = None) -> KeyphraseProbe:
    """Score ``backend`` (default: ``PocketSphinxKws()`` with the chosen rule) on the probe's sentences."""
    from workers.asr import PocketSphinxKws

    backend = backend or PocketSphinxKws()
    return score(utterances if utterances is not None else build(), backend.spot)


# (per_phone, free_phones, min_exponent): a phrase of n phones and w words gets the threshold
# 1e-(per_phone * (n - free_phones)), at most 1e-1, and at most 1e-(min_exponent) when w > 1
SWEEP: tuple[tuple[float, float, int], ...] = (
    (1.0, 0, 10),  # the rule before this probe
    (1.5, 0, 10), (2.0, 0, 10), (2.5, 0, 10), (1.0, 0, 20), (1.0, 0, 25),
    (2.0, 2, 0), (2.5, 2, 0), (3.0, 2, 0), (3.0, 2, 10),
    (2.5, 3, 0), (3.0, 3, 0), (3.5, 3, 0), (4.0, 3, 0), (5.0, 3, 0), (4.0, 3, 10),
    (3.0, 4, 0), (4.0, 4, 0), (5.0, 4, 0), (4.0, 5, 0), (5.0, 5, 0), (6.0, 5, 0),
    (5.0, 4, 10),  # the chosen rule (workers.asr)
)


def sweep(utterances: Sequence[Utterance], rules=SWEEP, out=sys.stdout) -> list[tuple[tuple, KeyphraseProbe]]:
    from workers.asr import PocketSphinxKws

    results = []
    cats = [c for c in LEXICON if c not in SKIP]
    print("| per phone | free phones | min exponent (phrases) | hits | correct | precision | recall | F1 | "
          "false hits / min | " + " | ".join(f"{c} P/R" for c in cats) + " |", file=out)
    print("|" + "---|" * (9 + len(cats)), file=out)
    for rule in rules:
        per_phone, free_phones, min_exp = rule
        p = score(utterances, PocketSphinxKws(per_phone=per_phone, free_phones=free_phones,
                                              min_exponent=min_exp).spot)
        t = p.total
        print(f"| {per_phone} | {free_phones} | {min_exp} | {t.hits} | {t.correct} | {t.precision:.2f} | "
              f"{t.recall:.2f} | {t.f1:.3f} | {p.false_per_min(t):.1f} | "
              + " | ".join(f"{p.categories[c].precision:.2f}/{p.categories[c].recall:.2f}" for c in cats) + " |",
              file=out, flush=True)
        results.append((rule, p))
    return results


def decoder_options(args: Sequence[str]) -> dict[str, str | int | float]:
    """``--decoder KEY=VALUE`` (repeatable): pocketsphinx settings to try (e.g. ``topn=2``, ``ds=2``)."""
    out: dict[str, str | int | float] = {}
    for flag, value in zip(args, args[1:], strict=False):
        if flag == "--decoder":
            key, _, raw = value.partition("=")
            for cast in (int, float, str):
                try:
                    out[key] = cast(raw)
                    break
                except ValueError:
                    continue
    return out


def main() -> None:
    utts = build()
    n_lab = sum(len(u.labels) for u in utts)
    n_dis = sum(not u.labels for u in utts)
    print(f"{len(utts)} sentences ({n_lab} scripted phrases, {n_dis} distractor sentences), "
          f"{len(VOICES)} voices, {sum(u.speech_s for u in utts):.0f} s of speech")
    if "--sweep" in sys.argv[1:]:
        sweep(utts)
        return
    options = decoder_options(sys.argv[1:])
    from workers.asr import PocketSphinxKws

    started = time.process_time()
    p = probe(PocketSphinxKws(decoder_options=options), utterances=utts)
    cpu = time.process_time() - started
    print(p.table())
    print(f"decoder options {options or 'default'}: {cpu / sum(u.speech_s for u in utts):.4f} CPU s per s of speech")
    print("missed:", ", ".join(f"{k} {v}" for k, v in sorted(p.missed.items(), key=lambda kv: -kv[1])))
    print("wrong hits:", ", ".join(f"{k} {v}" for k, v in sorted(p.false.items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
