"""The verbal cue lexicon: phrase -> category (a cue name of modality ``verbal``).

Phrases are lower case, words as the speech recogniser's dictionary spells
them. ``filler`` phrases are filled pauses ("um", "uh"): they are reported as
the verbal cue ``filler``.
"""

from __future__ import annotations

LEXICON: dict[str, tuple[str, ...]] = {
    "hedge": ("maybe", "i think", "sort of", "kind of", "probably", "i guess", "perhaps"),
    "affirmation": ("yes", "exactly", "i agree", "absolutely", "that's right"),
    "negation": ("no", "i don't think", "actually", "i disagree"),
    "confusion_phrase": ("what do you mean", "i don't understand", "i'm confused"),
    "doubt_phrase": ("really", "are you sure", "i doubt"),
    "strain_word": ("frustrating", "worried", "pressure", "stressed"),
    "interest_phrase": ("tell me more", "interesting", "how does"),
    "certainty_word": ("definitely", "clearly", "certainly"),
    "filler": ("um", "uh"),
}

VERBAL_CUES: tuple[str, ...] = tuple(LEXICON)


def phrase_category() -> dict[str, str]:
    return {p: cat for cat, phrases in LEXICON.items() for p in phrases}
