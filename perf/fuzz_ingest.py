"""Fuzz the WebM ingest with many hostile cases and report the outcome counts.

    python perf/fuzz_ingest.py [--cases 100000] [--decode-every 20] [--seed 1]

Every case is a mutated real WebM stream fed in chunks through the demuxer (and,
for every Nth case, the decoders too). The only allowed failure is an IngestError
with a protocol code; anything else, or a case slower than --hang-seconds, fails the run.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import time

from inter1srv.ingest.fuzzing import run_case
from inter1srv.synthmedia import default_script, encode_webm


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--decode-every", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hang-seconds", type=float, default=10.0)
    parser.add_argument("--json")
    args = parser.parse_args()
    clip = encode_webm(default_script(3.0), width=160, height=120, fps=10)
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    slowest = 0.0
    started = time.perf_counter()
    for i in range(args.cases):
        rng = random.Random(args.seed * 1_000_003 + i)
        t0 = time.perf_counter()
        outcome = run_case(clip, rng, chunk=rng.choice([64, 512, 4096, 65536]), decode=i % args.decode_every == 0)
        took = time.perf_counter() - t0
        slowest = max(slowest, took)
        if took > args.hang_seconds:
            raise SystemExit(f"case {i} ({outcome.mutation}) took {took:.1f} s")
        counts[(outcome.mutation, outcome.error_code or "accepted")] += 1
    report = {
        "cases": args.cases,
        "seconds": round(time.perf_counter() - started, 1),
        "slowest_case_s": round(slowest, 3),
        "outcomes": {f"{m}:{c}": n for (m, c), n in sorted(counts.items())},
    }
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
