"""DPC / MemDPC's fine-tuning network: pretraining writes encoder_dpc.pt (backbone + ConvGRU as one
``dpc_aggregate`` backbone), ``load_encoder`` rebuilds it with the method's own weights, and the fine-tuning
classifier trains it end to end with DPC's optimizer (Adam, coupled L2 on every parameter)."""
import pytest
import torch
from omegaconf import OmegaConf

from videossl.backbones import create_backbone, load_encoder, save_encoder
from videossl.backbones.dpc_aggregate import ConvGRUCell, DPCAggregate
from videossl.config import load_pretrain_config
from videossl.engine.trainer import pretrain
from videossl.errors import UserError
from videossl.eval.config import FinetuneConfig, load_eval_config
from videossl.eval.finetune import VideoClassifier, build_optimizer, run_finetune
from videossl.methods import METHODS


def build(name="dpc", *extra):
    cfg = load_pretrain_config(None, [f"method.name={name}", "data.num_frames=2", "data.crop_size=32",
                                      "method.num_blocks=4", "method.pred_steps=1", "method.gru_dropout=0.1",
                                      *extra])
    torch.manual_seed(0)
    return METHODS[name](cfg)


def same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def export_and_load(method, tmp_path) -> DPCAggregate:
    module, name, kwargs = method.extra_encoders()["dpc"]
    save_encoder(tmp_path / "encoder_dpc.pt", module, name, kwargs)  # what the trainer does at each checkpoint
    return load_encoder(tmp_path / "encoder_dpc.pt")


@pytest.mark.parametrize("name", ["dpc", "memdpc"])
def test_exported_composite_holds_the_methods_backbone_and_convgru(name, tmp_path):
    method = build(name, "method.memory_slots=8") if name == "memdpc" else build(name)
    loaded = export_and_load(method, tmp_path)
    assert isinstance(loaded, DPCAggregate)
    assert same_state(loaded.encoder, method.backbone) and same_state(loaded.aggregate, method.aggregate)
    assert (loaded.num_blocks, loaded.block_frames) == (4, 2)
    d = method.backbone.num_features
    if name == "memdpc":  # MemDPC's LC: forward and backward contexts concatenated
        assert same_state(loaded.aggregate_backward, method.aggregate_backward) and loaded.num_features == 2 * d
    else:
        assert loaded.aggregate_backward is None and loaded.num_features == d
    assert loaded.aggregate.dropout.p == pytest.approx(0.1)  # DPC's ConvGRU dropout travels with the kwargs
    # only backbone, ConvGRU(s) and the fresh final BN: no predictor, no memory
    assert {k.split(".")[0] for k in loaded.state_dict()} <= {"encoder", "aggregate", "aggregate_backward", "final_bn"}


def test_composite_forward_is_the_lc_context(tmp_path):
    """forward_features = BN(spatial mean of the last ConvGRU state over ReLU'd, time-averaged block maps)."""
    method = build()
    loaded = export_and_load(method, tmp_path).eval()
    clip = torch.randn(2, 3, 8, 32, 32)  # 4 blocks x 2 frames, contiguous
    method.eval()
    with torch.no_grad():
        blocks = [clip[:, :, 2 * i:2 * i + 2] for i in range(4)]  # block i = frames 2i, 2i+1
        maps = torch.stack([torch.relu(method.backbone.forward_tokens(b)).mean(dim=2) for b in blocks], dim=1)
        hidden = None
        for i in range(4):
            hidden = method.aggregate(maps[:, i], hidden)
        expected = hidden.flatten(2).mean(dim=2)  # final_bn: fresh statistics, identity in eval mode
        assert torch.allclose(loaded(clip), expected, atol=1e-5)
    with pytest.raises(UserError, match="data.num_frames=8"):
        loaded(torch.randn(1, 3, 5, 32, 32))


def test_finetune_forward_backward_with_dpc_optimizer(tmp_path):
    loaded = export_and_load(build("memdpc", "method.memory_slots=8"), tmp_path)
    model = VideoClassifier(loaded, num_classes=5, dropout=0.5)
    settings = OmegaConf.structured(FinetuneConfig(optimizer="adam", lr=2e-3, weight_decay=1e-3,
                                                   decay_bias_and_norm=True))
    optimizer = build_optimizer(model, settings, batch_size=128)
    assert isinstance(optimizer, torch.optim.Adam) and not isinstance(optimizer, torch.optim.AdamW)
    assert all(g["weight_decay"] == 1e-3 for g in optimizer.param_groups)  # DPC: L2 on every parameter
    assert all(g["lr"] == pytest.approx(1e-3) for g in optimizer.param_groups)  # 2e-3 per 256 at batch 128
    before = {k: v.clone() for k, v in loaded.state_dict().items()}
    loss = torch.nn.functional.cross_entropy(model(torch.randn(3, 3, 8, 32, 32)), torch.tensor([0, 1, 2]))
    loss.backward()
    for part in (loaded.encoder, loaded.aggregate, loaded.aggregate_backward, loaded.final_bn):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    optimizer.step()
    after = loaded.state_dict()
    assert not torch.equal(after["aggregate.gates.weight"], before["aggregate.gates.weight"])
    assert not torch.equal(after["encoder.stem.0.weight"], before["encoder.stem.0.weight"])


def test_default_finetune_optimizer_is_unchanged_and_adam_is_finetune_only():
    settings = OmegaConf.structured(FinetuneConfig())
    model = VideoClassifier(create_backbone("tiny_r3d"), num_classes=3)
    decays = sorted(g["weight_decay"] for g in build_optimizer(model, settings, 16).param_groups)
    assert decays[0] == 0.0 and decays[-1] == settings.weight_decay  # no decay on biases / norms by default
    assert load_eval_config("random:tiny_r3d", None, ["finetune.optimizer=adam"]).finetune.optimizer == "adam"
    with pytest.raises(UserError, match="linear.optimizer"):
        load_eval_config("random:tiny_r3d", None, ["linear.optimizer=adam"])


def test_random_composite_builds_from_the_registry():
    backbone = create_backbone("dpc_aggregate", backbone="tiny_r3d", num_blocks=2, block_frames=3,
                               bidirectional=True)
    assert backbone(torch.randn(2, 3, 6, 32, 32)).shape == (2, 2 * backbone.encoder.num_features)
    assert isinstance(backbone.aggregate, ConvGRUCell)


def test_pretraining_run_writes_encoder_dpc(tiny_pool, tiny_overrides, tmp_path):
    overrides = tiny_overrides(tiny_pool, tmp_path / "run", frames=2,
                               extra=["method.name=dpc", "method.num_blocks=4", "method.pred_steps=1"])
    run_dir = pretrain(load_pretrain_config(None, overrides))
    composite = load_encoder(run_dir / "encoder_dpc.pt")
    plain = load_encoder(run_dir / "encoder.pt")
    assert isinstance(composite, DPCAggregate) and same_state(composite.encoder, plain)
    state = torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=False)["model"]
    for key, value in composite.aggregate.state_dict().items():
        assert torch.equal(value, state[f"aggregate.{key}"])

    # the DPC fine-tuning recipe runs on it (geometry shrunk to the tiny run: 4 blocks x 2 frames, 32 px)
    cfg = load_eval_config(str(run_dir / "encoder_dpc.pt"), "eval/ucf101_finetune_dpc", [
        "data.format=folder", f"data.root={tiny_pool.parent}", "data.num_frames=8", "data.frame_stride=1",
        "data.crop_size=32", "data.num_workers=0", "finetune.epochs=2", "finetune.batch_size=4",
        "finetune.lr_milestones=[1]", "test.num_clips=2", "device=cpu", "progress=false", f"out_dir={tmp_path}"])
    assert (cfg.finetune.optimizer, cfg.finetune.decay_bias_and_norm, cfg.test.num_crops) == ("adam", True, 1)
    result = run_finetune(cfg)
    assert 0.0 <= result["top1"] <= 1.0 and len(result["splits"][0]["train_loss"]) == 2
