"""The attentive probe (V-JEPA's frozen evaluation): the pooler, its helpers, and `videossl eval attentive` end to end
on tiny real MP4s for a ViT and a 3D CNN encoder."""
from __future__ import annotations

import json
import math

import pytest
import torch

from videossl.errors import UserError
from videossl.eval.attentive import cosine_value, frozen_tokens, probe_inputs, probe_num_heads
from videossl.nn.attentive_pooler import AttentiveClassifier, AttentivePooler


def test_pooler_and_classifier_shapes():
    torch.manual_seed(0)
    tokens = torch.randn(3, 10, 32)
    assert AttentivePooler(32, num_heads=4)(tokens).shape == (3, 1, 32)
    assert AttentivePooler(32, num_heads=4, num_queries=2)(tokens).shape == (3, 2, 32)
    assert AttentiveClassifier(32, num_classes=5, num_heads=4)(tokens).shape == (3, 5)
    with pytest.raises(ValueError, match="divisible"):
        AttentivePooler(30, num_heads=4)


def test_pooler_reads_every_token_and_ignores_their_order():
    """No positions inside the probe: permuting the tokens leaves the output unchanged, changing one token does not."""
    torch.manual_seed(0)
    probe = AttentiveClassifier(16, num_classes=3, num_heads=2).eval()
    tokens = torch.randn(2, 7, 16)
    out = probe(tokens)
    assert (probe(tokens[:, torch.randperm(7)]) - out).abs().max() < 1e-6
    changed = tokens.clone()
    changed[:, 6] = 3 * torch.randn(2, 16)  # (a constant shift would vanish in the LayerNorm)
    assert (probe(changed) - out).abs().max() > 1e-4


def test_pooler_init_follows_the_reference():
    torch.manual_seed(0)
    pooler = AttentivePooler(64, num_heads=4)
    assert pooler.query.std().item() < 0.05 and pooler.block.q.bias.abs().max() == 0
    # residual projections rescaled by 1/sqrt(2) after the std-0.02 truncated normal (jepa _rescale_blocks)
    assert abs(pooler.block.proj.weight.std().item() - 0.02 / math.sqrt(2)) < 0.003
    assert abs(pooler.block.kv.weight.std().item() - 0.02) < 0.003


def test_probe_learns_a_separable_toy_problem():
    """Each sample is 12 noise tokens with ONE class token (the class prototype) at a random place."""
    gen = torch.Generator().manual_seed(0)
    num_classes, dim, n = 4, 16, 12
    prototypes = torch.randn(num_classes, dim, generator=gen) * 3

    def batch(size):
        labels = torch.randint(num_classes, (size,), generator=gen)
        tokens = torch.randn(size, n, dim, generator=gen)
        where = torch.randint(n, (size,), generator=gen)
        tokens[torch.arange(size), where] = prototypes[labels]
        return tokens, labels

    torch.manual_seed(0)
    probe = AttentiveClassifier(dim, num_classes, num_heads=2)
    opt = torch.optim.AdamW(probe.parameters(), lr=3e-3)
    for _ in range(300):
        tokens, labels = batch(32)
        loss = torch.nn.functional.cross_entropy(probe(tokens), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    tokens, labels = batch(400)
    with torch.no_grad():
        accuracy = (probe(tokens).argmax(1) == labels).float().mean().item()
    assert accuracy > 0.9, accuracy


def test_cnn_feature_maps_become_tokens():
    class MapEncoder(torch.nn.Module):
        def forward_tokens(self, x):
            return x  # pretend the clip is the (B, D, t, h, w) map

    clips = torch.randn(2, 6, 3, 4, 5)
    tokens = frozen_tokens(MapEncoder(), clips)
    assert tokens.shape == (2, 3 * 4 * 5, 6)
    assert torch.equal(tokens[1, 4 * 5 + 2 * 5 + 3], clips[1, :, 1, 2, 3])  # token (t=1, h=2, w=3)


def test_clips_of_a_video_are_attended_together():
    tokens = torch.arange(2 * 3 * 4 * 1, dtype=torch.float32).view(6, 4, 1)  # 2 videos x 3 clips, 4 tokens each
    together = probe_inputs(tokens, num_clips=3, across=True)
    assert together.shape == (2, 12, 1)
    assert torch.equal(together[1], tokens[3:].reshape(12, 1))
    assert probe_inputs(tokens, num_clips=3, across=False) is tokens


def test_head_count():
    from videossl.backbones import create_backbone

    torch.manual_seed(0)
    assert probe_num_heads(create_backbone("tiny_videomae"), 64) == 2  # the ViT's own heads
    assert probe_num_heads(torch.nn.Identity(), 512) == 8  # a 3D CNN map: head width 64
    assert probe_num_heads(torch.nn.Identity(), 96) == 1
    assert probe_num_heads(torch.nn.Identity(), 96, requested=4) == 4
    with pytest.raises(UserError, match="attentive.num_heads"):
        probe_num_heads(torch.nn.Identity(), 96, requested=5)


def test_schedule_is_the_reference_warmup_cosine():
    # WarmupCosineSchedule(start_lr=0.0, ref_lr=1.0, final_lr=0.1, warmup_steps=10, T_max=110)
    assert cosine_value(5, 110, 10, 0.0, 1.0, 0.1) == pytest.approx(0.5)
    assert cosine_value(10, 110, 10, 0.0, 1.0, 0.1) == pytest.approx(1.0)
    assert cosine_value(60, 110, 10, 0.0, 1.0, 0.1) == pytest.approx(0.55)
    assert cosine_value(110, 110, 10, 0.0, 1.0, 0.1) == pytest.approx(0.1)
    # CosineWDSchedule(ref_wd=0.01, final_wd=1e-6): half way is the mean
    assert cosine_value(50, 100, 0, 0.01, 0.01, 1e-6) == pytest.approx((0.01 + 1e-6) / 2)


@pytest.mark.parametrize("encoder", ["random:tiny_videomae", "random:tiny_r3d"])
def test_videossl_eval_attentive_end_to_end(encoder, colour_folder_dataset, tmp_path):
    from videossl.cli import main

    out = tmp_path / "out"
    code = main(["eval", "attentive", encoder, "data.format=folder", f"data.root={colour_folder_dataset}",
                 "data.num_frames=4", "data.frame_stride=2", "data.crop_size=32", "data.num_workers=0",
                 "data.batch_size=4", "test.num_clips=2", "test.num_crops=3", "attentive.epochs=4",
                 "attentive.batch_size=4", "attentive.lr=0.2", "attentive.start_lr=0.2", "progress=false",
                 f"out_dir={out}"])
    assert code == 0
    result = json.loads((out / "attentive.json").read_text())
    split = result["splits"][0]
    assert result["protocol"] == "attentive" and split["num_test"] == 6 and split["num_train"] == 12
    assert result["settings"]["attend_across_clips"] is True and result["test_views"]["num_clips"] == 2
    assert len(split["train_loss"]) == 4 and split["train_loss"][-1] < split["train_loss"][0]
    assert 0.0 <= result["top1"] <= 1.0 and result["top5"] == 1.0  # 3 classes: top-5 holds every class


def test_clips_scored_alone_and_a_bad_head_count(colour_folder_dataset, tmp_path):
    from videossl.eval.attentive import run_attentive_probe
    from videossl.eval.config import load_eval_config

    common = ["data.format=folder", f"data.root={colour_folder_dataset}", "data.num_frames=4", "data.frame_stride=2",
              "data.crop_size=32", "data.num_workers=0", "data.batch_size=6", "test.num_clips=2", "test.num_crops=1",
              "attentive.epochs=1", "progress=false", f"out_dir={tmp_path}"]
    result = run_attentive_probe(load_eval_config("random:tiny_r3d", None, [
        *common, "attentive.attend_across_clips=false", "attentive.label_fraction=0.5"]))
    split = result["splits"][0]
    assert split["num_test"] == 6 and split["num_train"] == 6 and split["label_subset"]["per_class_min"] == 2
    assert len((tmp_path / "label_subset.txt").read_text().splitlines()) == 6
    with pytest.raises(UserError, match="attentive.num_heads"):
        run_attentive_probe(load_eval_config("random:tiny_r3d", None, [*common, "attentive.num_heads=7"]))


def test_cached_tokens_are_extracted_once_and_reshuffled(colour_folder_dataset, tmp_path):
    from videossl.backbones import create_backbone
    from videossl.eval.attentive import CachedTokens, run_attentive_probe
    from videossl.eval.config import load_eval_config
    from videossl.eval.features import read_split

    cfg = load_eval_config("random:tiny_r3d", None, [
        "data.format=folder", f"data.root={colour_folder_dataset}", "data.num_frames=4", "data.frame_stride=2",
        "data.crop_size=32", "data.num_workers=0", "data.batch_size=6", "test.num_clips=2", "test.num_crops=1",
        "attentive.epochs=6", "attentive.batch_size=4", "attentive.lr=0.2", "attentive.start_lr=0.2",
        "attentive.cache_tokens=true", "progress=false", f"out_dir={tmp_path}"])
    torch.manual_seed(0)
    source = CachedTokens(cfg, create_backbone("tiny_r3d").eval(), read_split(cfg.data, "train", 1), torch.device("cpu"))
    assert source.tokens.shape[:2] == (12, 2) and source.dataset.decode_calls == 12 and len(source) == 3
    epochs = [[labels for _, labels in source.epoch(e)] for e in (0, 1)]
    assert all(tokens.shape[0] == 2 * labels.shape[0] for tokens, labels in source.epoch(0))
    assert sorted(torch.cat(epochs[0]).tolist()) == sorted(source.labels.tolist())
    assert not torch.equal(torch.cat(epochs[0]), torch.cat(epochs[1]))  # a new order every epoch
    result = run_attentive_probe(cfg)
    losses = result["splits"][0]["train_loss"]
    assert result["settings"]["cache_tokens"] is True and losses[-1] < losses[0]
