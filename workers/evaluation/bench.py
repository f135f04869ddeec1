"""Model CPU cost per media second on the labelled corpus, with and without the per-worker caches.

    python -m workers.evaluation.bench

Windows of 8 s every 3 s in session order, one at a time (batch 1), CPU time of this
process (all threads) divided by the media seconds covered. Rows: the full model with
its per-session caches (one worker sees the whole session); the same with the caches
emptied before every window (every window on a different worker); the model with each face
detector (``haar``, ``mtcnn``) and the face trackers alone; and the model without face
tracking, without ASR, and without both, to show what each part costs.
"""

from __future__ import annotations

import time


def main() -> None:
    import torch

    torch.set_num_threads(1)
    from workers.baseline import BaselineModel
    from workers.evaluation.corpus import build, decode_webm
    from workers.evaluation.score import windows_of
    from workers.face import make_tracker

    corpus = build()
    frames, times, audio, a0 = decode_webm(corpus.webm)
    windows = windows_of(frames, times, audio, a0, corpus.duration)
    media = windows[-1].end

    def run(model: BaselineModel, clear: bool) -> float:
        started = time.process_time()
        for w in windows:
            if clear:
                model.clear_caches()
            model.analyze([w])
        return (time.process_time() - started) / media

    BaselineModel("cpu").analyze(windows[:1])  # imports, cascades, acoustic model
    rows = []
    model = BaselineModel("cpu")
    rows.append(("full model, per-worker cache", run(model, False)))
    stats = model.cache_stats()
    rows.append(("full model, no cache", run(BaselineModel("cpu"), True)))
    for kind in ("haar", "mtcnn"):
        tracker = make_tracker(kind)
        if tracker.kind != kind:
            continue  # MTCNN weights missing (make_tracker logged it)
        rows.append((f"full model, {kind} faces", run(BaselineModel("cpu", faces=kind), False)))
        tracker.frames_batch([(w.session_id + "warm", w.frames, w.frame_times) for w in windows[:1]])
        started = time.process_time()
        for w in windows:
            tracker.frames_batch([(w.session_id, w.frames, w.frame_times)])
        rows.append((f"{kind} face tracking alone", (time.process_time() - started) / media))
    rows.append(("no ASR (faces + audio + motion)", run(BaselineModel("cpu", asr="none"), False)))
    rows.append(("no faces (ASR + audio + motion)", run(BaselineModel("cpu", faces=False), False)))
    rows.append(("audio + motion only", run(BaselineModel("cpu", asr="none", faces=False), False)))
    print("| configuration | CPU s per media s |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value:.4f} |")
    print(f"\nface-frame cache hit rate {stats.get('face_hit_rate', 0):.2f} "
          f"({stats.get('face_hits', 0)} hits, {stats.get('face_misses', 0)} computed); ASR regions: "
          f"{stats['asr_hits']} cached, {stats['asr_misses']} decoded ({stats['asr_decoded_s']:.1f} s of audio "
          f"of {media:.0f} s media)")


if __name__ == "__main__":
    main()
