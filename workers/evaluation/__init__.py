"""Evaluation of the baseline model on a labelled, scripted corpus (real face photo, espeak-ng speech).

- :mod:`workers.evaluation.corpus`: builds the clip (frames, audio, WebM) and its labels;
- :mod:`workers.evaluation.score`: runs the model and the sequencer logic over it and scores
  per-signal precision / recall / F1 at 1 s, onset error and unmatched rationale cues.

``python -m workers.evaluation`` prints the table.
"""
