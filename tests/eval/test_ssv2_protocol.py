"""What Something-Something v2 evaluation needs: no horizontal flip in training (``finetune.hflip=false``), the
labelled validation list as the test split (``data.test_split``), and its eval recipes' settings."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from videossl.errors import UserError
from videossl.eval.config import load_eval_config
from videossl.eval.features import read_split
from videossl.eval.views import finetune_spec, partition_clips_spec


def _flipped_count(spec, frames: np.ndarray, draws: int = 24) -> int:
    """How many of ``draws`` training transforms of ``frames`` came out mirrored (strength 0: the whole frame)."""
    transform = spec.transforms["clip"]
    plain = transform.__class__(transform.pipeline.transforms[-2:])(frames)  # to float + normalise: unflipped
    count = 0
    for seed in range(draws):
        torch.manual_seed(seed)
        out = transform(frames)
        if not torch.allclose(out, plain, atol=1e-5):
            assert torch.allclose(out, plain.flip(-1), atol=1e-5)  # nothing else changes at strength 0
            count += 1
    return count


def test_hflip_false_never_mirrors_a_training_clip():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(4, 16, 16, 3), dtype=np.uint8)  # square: the crop is the whole frame
    assert _flipped_count(finetune_spec(4, 2, 16, strength=0.0), frames) > 4
    assert _flipped_count(finetune_spec(4, 2, 16, strength=0.0, hflip=False), frames) == 0
    assert _flipped_count(partition_clips_spec(2, 4, 2, 16, strength=0.0), frames) == 0  # the attentive probe's


def _ssv2_layout(root):
    labels = {"Pushing something from left to right": "0", "Pushing something from right to left": "1"}
    (root / "labels.json").write_text(json.dumps(labels))
    items = {"train": [("1", "Pushing [something] from left to right"), ("2", "Pushing [something] from right to left")],
             "validation": [("3", "Pushing [something] from right to left")], "test": [("4", None)]}
    for split, rows in items.items():
        listed = [{"id": i, **({"template": t} if t else {})} for i, t in rows]
        (root / f"something-something-v2-{split}.json").write_text(json.dumps(listed))
        for i, _ in rows:
            (root / f"{i}.webm").write_bytes(b"")
    return root


def test_ssv2_tests_on_its_labelled_validation_list(tmp_path):
    root = _ssv2_layout(tmp_path)
    data = OmegaConf.create({"format": "ssv2", "root": str(root), "annotations": "", "decoder": "pyav",
                             "max_missing": 0.0, "test_split": "validation"})
    index = read_split(data, "test", 1)
    assert [e.label for e in index.entries] == [1] and index.entries[0].path.endswith("3.webm")
    data.test_split = "test"
    with pytest.raises(UserError, match="data.test_split=validation"):
        read_split(data, "test", 1)


@pytest.mark.parametrize("name, expected", [
    ("ssv2_attentive_vjepa", {"data.num_frames": 16, "data.frame_stride": 4, "data.test_split": "validation",
                              "test.num_clips": 2, "test.num_crops": 3, "attentive.epochs": 20,
                              "attentive.hflip": False}),
    ("k400_attentive_vjepa", {"data.num_frames": 16, "data.frame_stride": 4, "test.num_clips": 8,
                              "test.num_crops": 3, "attentive.epochs": 20}),
    ("ssv2_finetune_videomae", {"data.num_frames": 16, "data.test_split": "validation", "finetune.sampling": "segments",
                                "finetune.hflip": False, "test.num_clips": 2, "test.num_crops": 3,
                                "finetune.epochs": 50, "finetune.lr": 5e-4}),
])
def test_the_eval_recipes_hold_the_papers_protocol(name, expected):
    cfg = load_eval_config("random:tiny_videomae", f"eval/{name}", [])
    for key, value in expected.items():
        assert OmegaConf.select(cfg, key) == value, key
