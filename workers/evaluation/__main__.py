"""python -m workers.evaluation: build the corpus, run the model, print the markdown table."""

from __future__ import annotations

import json
import sys

from workers.evaluation.corpus import build, decode_webm
from workers.evaluation.score import evaluate


def main() -> None:
    corpus = build()
    frames, times, audio, a0 = decode_webm(corpus.webm)
    ev = evaluate(corpus, frames, times, audio, a0)
    print(ev.markdown())
    print("cache:", json.dumps(ev.cache))
    for u in ev.unmatched:
        print("unmatched:", json.dumps(u), file=sys.stderr)


if __name__ == "__main__":
    main()
