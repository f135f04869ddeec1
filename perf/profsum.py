"""Summarise py-spy collapsed stacks (``--format raw``): where a process spends its samples.

    python -m perf.profsum perf/results/prof.worker.123.txt [--top 25] [--match workers/]

Prints the share of samples per function, self (top of stack) and inclusive (anywhere on the
stack, counted once per sample), and the total sample count.
"""

from __future__ import annotations

import argparse
import collections
import re

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _name(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    file = m.group("file")
    for marker in ("site-packages/", "/work/main/", "snapshot-"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{m.group('func')} ({file})"


def summarise(path: str, top: int = 25, match: str | None = None) -> str:
    self_count: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            n = int(count)
            frames = [_name(f) for f in stack.split(";") if f]
            frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
            if not frames:
                continue
            total += n
            self_count[frames[-1]] += n
            for f in set(frames):
                incl[f] += n
    lines = [f"{path}: {total} samples"]
    lines.append("  self%   incl%  function")
    keys = [k for k, _ in incl.most_common()] if match is None else [k for k in incl if match in k]
    keys = sorted(keys, key=lambda k: -incl[k])[:top]
    for k in keys:
        lines.append(f"{100 * self_count[k] / max(total, 1):6.1f}  {100 * incl[k] / max(total, 1):6.1f}  {k}")
    lines.append("  top self:")
    for k, v in self_count.most_common(top):
        lines.append(f"{100 * v / max(total, 1):6.1f}  {k}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--match")
    args = ap.parse_args()
    for p in args.paths:
        print(summarise(p, args.top, args.match))
        print()


if __name__ == "__main__":
    main()
