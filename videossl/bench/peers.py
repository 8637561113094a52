"""One training step, ours and the peers', on the same backbone, batch and input (``videossl bench train``).

A *runner* owns a model, its optimizer and a fixed synthetic batch (random ``(B, C, T, H, W)`` views, no
decoding) and does one full training step per ``step()``: forward, loss, backward, optimizer step and the
method's after-step hook (EMA teachers). Three implementations:

- ``ours``: the method class from ``METHODS`` through its ``training_step`` and our optimizer (AdamW with
  parameter groups, ``engine/optim.py``);
- ``pytorchvideo``: ``pytorchvideo.models.simclr.SimCLR`` / ``pytorchvideo.models.byol.BYOL`` (their own
  forward and loss; MLPs from ``pytorchvideo.layers.mlp.make_multilayer_perceptron``) around OUR backbone;
- ``lightly``: lightly 1.6's heads (``lightly.models.modules``) and losses (``lightly.loss``) around OUR
  backbone, written as lightly's own examples do (one forward per view).

Every runner is built from the same seed, so ours and the peers start from identical backbone weights; heads
have our method config's sizes. Peers use ``torch.optim.AdamW`` over all parameters, as their examples do.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from videossl.backbones import create_backbone
from videossl.config import load_pretrain_config
from videossl.data.build import build_dataset
from videossl.data.loader import build_train_loader
from videossl.engine.optim import build_optimizer
from videossl.errors import UserError
from videossl.methods import METHODS, StepInfo

# method -> peers that implement it (any METHODS entry can be measured alone, without a peer)
PEERS: dict[str, tuple[str, ...]] = {
    "simclr": ("pytorchvideo", "lightly"),
    "byol": ("pytorchvideo", "lightly"),
    "simsiam": ("lightly",),
    "barlow_twins": ("lightly",),
    "vicreg": ("lightly",),
}


@dataclass
class StepSpec:
    """What one step is: method, backbone, batch size B, frames T, crop S, device and run-time options."""

    method: str = "simclr"
    backbone: str = "tiny_r3d"
    batch: int = 8
    frames: int = 8
    crop: int = 64
    device: str = "cpu"
    precision: str = "32-true"  # 32-true | bf16-mixed
    compile: bool = False
    channels_last: bool = False
    overrides: list[str] = field(default_factory=list)  # extra ``a.b=value`` config overrides
    seed: int = 0

    def label(self) -> str:
        return f"{self.method}/{self.backbone} B{self.batch} T{self.frames} {self.crop}px"


class Runner:
    """One implementation's model + optimizer + fixed batch; ``step()`` is one full training step."""

    def __init__(self, name: str, clips_per_step: int, step_fn: Callable[[], Any], modules: list[Any]):
        self.name, self.clips_per_step, self._step, self.modules = name, clips_per_step, step_fn, modules

    def step(self) -> None:
        self._step()


def build_config(spec: StepSpec):
    overrides = [f"method.name={spec.method}", f"backbone.name={spec.backbone}", f"data.num_frames={spec.frames}",
                 f"data.crop_size={spec.crop}", f"train.batch_size={spec.batch}", *spec.overrides]
    return load_pretrain_config(None, overrides)


def autocast(spec: StepSpec):
    if spec.precision == "bf16-mixed":
        return torch.autocast(device_type=spec.device.split(":")[0], dtype=torch.bfloat16)
    if spec.precision not in ("32-true", "32"):
        raise UserError(f"bench train --precision: use 32-true or bf16-mixed, got {spec.precision}")
    return contextlib.nullcontext()


def make_views(spec: StepSpec, num_views: int) -> list:
    """``num_views`` random ``(B, 3, T, S, S)`` tensors on the device (the same for every implementation)."""
    generator = torch.Generator().manual_seed(spec.seed + 1)
    return [torch.randn(spec.batch, 3, spec.frames, spec.crop, spec.crop, generator=generator).to(spec.device)
            for _ in range(num_views)]


def _backbone(cfg, spec: StepSpec):
    """Our backbone, built exactly as ``Method.__init__`` builds it, with the run-time options."""
    backbone = create_backbone(cfg.backbone.name, **dict(cfg.backbone.kwargs))
    return set_runtime_options(backbone, spec)


def set_runtime_options(backbone, spec: StepSpec):
    inner = getattr(backbone, "inner", backbone)  # residual-input wrapper
    if spec.compile or spec.channels_last:
        inner.set_runtime_options(channels_last=spec.channels_last, compile=spec.compile)
    return backbone


def method_batch(cfg, method, batch_size: int, device: str, seed: int = 0) -> dict[str, Any]:
    """A batch of ``batch_size`` samples shaped exactly as ``method.views()`` asks for (any method, any views).

    One sample goes through the real data pipeline (a 2-video synthetic set at 32 px, cached); every floating
    tensor is then replaced by random numbers of the same shape with the batch dimension grown to
    ``batch_size``, and integer tensors (labels, orders) are repeated. No decoding happens in the timed steps.
    """
    data_cfg = cfg.data.copy()
    data_cfg.format, data_cfg.root, data_cfg.split = "synthetic", "", "pool"
    data_cfg.synthetic.num_pool, data_cfg.synthetic.num_train, data_cfg.synthetic.num_test = 2, 2, 2
    data_cfg.synthetic.size = 32
    dataset = build_dataset(data_cfg, method.views(), split="pool", seed=seed)
    loader, _ = build_train_loader(dataset, 1, seed=seed, num_workers=0, persistent_workers=False)
    one = next(iter(loader))
    generator = torch.Generator().manual_seed(seed + 1)

    def grow(x: Any) -> Any:
        if torch.is_tensor(x):
            if x.is_floating_point():
                return torch.randn(batch_size, *x.shape[1:], generator=generator).to(device)
            return x.repeat(batch_size, *([1] * (x.dim() - 1))).to(device)
        if isinstance(x, (list, tuple)):
            return type(x)(grow(v) for v in x)
        if isinstance(x, dict):
            return {k: grow(v) for k, v in x.items()}
        return x

    return grow(one)


def count_clips(batch: dict[str, Any]) -> int:
    """Video clips (or audio windows) in a batch: the sum of the first dimensions of its view tensors."""
    views = batch.get("video") or batch.get("audio") or []
    views = views if isinstance(views, (list, tuple)) else [views]
    return sum(int(v.shape[0]) for v in views)


def build_ours(spec: StepSpec) -> Runner:
    cfg = build_config(spec)
    torch.manual_seed(spec.seed)
    method = METHODS[spec.method](cfg)
    set_runtime_options(method.backbone, spec)
    batch = method_batch(cfg, method, spec.batch, spec.device, spec.seed)
    method.to(spec.device).train()
    optimizer = build_optimizer(method, cfg.optim)
    info = StepInfo(0, 1000, 0)

    def step() -> None:
        with autocast(spec):
            loss = method.training_step(batch, info)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        method.on_after_optimizer_step(info)

    return Runner("ours", count_clips(batch), step, [method])


def _peer_optimizer(model, cfg):
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.optim.lr,
                             weight_decay=cfg.optim.weight_decay)


def _simple_step(spec: StepSpec, model, optimizer, loss_fn: Callable[[], Any], after: Callable[[], None] | None = None):
    def step() -> None:
        with autocast(spec):
            loss = loss_fn()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if after is not None:
            after()

    return step


def _peer_inputs(spec: StepSpec):
    """What every peer starts from: the config, our backbone (seeded like ours) and two views."""
    cfg = build_config(spec)
    torch.manual_seed(spec.seed)
    return cfg, _backbone(cfg, spec), make_views(spec, 2)


def build_pytorchvideo(spec: StepSpec) -> Runner:
    """pytorchvideo 0.1.5's SimCLR / BYOL modules (their forward computes the loss) around our backbone."""
    from pytorchvideo.layers.mlp import make_multilayer_perceptron
    cfg, backbone, (x1, x2) = _peer_inputs(spec)
    h = cfg.method
    dim = backbone.num_features
    if spec.method == "simclr":
        from pytorchvideo.models.simclr import SimCLR

        mlp, _ = make_multilayer_perceptron([dim, h.proj_hidden_dim, h.proj_dim], norm=nn.BatchNorm1d,
                                            final_activation=None)
        model = SimCLR(mlp, backbone, temperature=h.temperature).to(spec.device).train()
        after = None
    elif spec.method == "byol":
        from pytorchvideo.models.byol import BYOL

        projector, _ = make_multilayer_perceptron([dim, h.proj_hidden_dim, h.proj_dim], norm=nn.BatchNorm1d,
                                                  final_activation=None)
        model = BYOL(backbone, projector=projector, feature_dim=h.proj_dim, predictor_inner=h.pred_hidden_dim,
                     mmt=h.momentum_base, norm=nn.BatchNorm1d).to(spec.device).train()
        after = None  # pytorchvideo's BYOL updates its momentum encoder inside forward
    else:
        raise KeyError(f"pytorchvideo has no {spec.method} module")
    optimizer = _peer_optimizer(model, cfg)
    return Runner("pytorchvideo", 2 * spec.batch, _simple_step(spec, model, optimizer, lambda: model(x1, x2), after),
                  [model])


def build_lightly(spec: StepSpec) -> Runner:
    """lightly 1.6 heads and losses around our backbone, in the form of lightly's examples."""
    from lightly import loss as L
    from lightly.models import modules as M
    from lightly.models.utils import deactivate_requires_grad, update_momentum
    cfg, backbone, (x0, x1) = _peer_inputs(spec)
    h = cfg.method
    dim = backbone.num_features
    model = nn.Module()
    model.backbone = backbone
    after = None
    if spec.method == "simclr":
        model.head = M.SimCLRProjectionHead(dim, h.proj_hidden_dim, h.proj_dim)
        criterion = L.NTXentLoss(temperature=h.temperature)

        def loss_fn():
            return criterion(model.head(model.backbone(x0)), model.head(model.backbone(x1)))
    elif spec.method == "byol":
        model.head = M.BYOLProjectionHead(dim, h.proj_hidden_dim, h.proj_dim)
        model.predictor = M.BYOLPredictionHead(h.proj_dim, h.pred_hidden_dim, h.proj_dim)
        model.backbone_momentum = copy.deepcopy(backbone)
        model.head_momentum = copy.deepcopy(model.head)
        deactivate_requires_grad(model.backbone_momentum)
        deactivate_requires_grad(model.head_momentum)
        criterion = L.NegativeCosineSimilarity()

        def loss_fn():
            p0, p1 = (model.predictor(model.head(model.backbone(x))) for x in (x0, x1))
            with torch.no_grad():
                z0, z1 = (model.head_momentum(model.backbone_momentum(x)).detach() for x in (x0, x1))
            return 0.5 * (criterion(p0, z1) + criterion(p1, z0))

        def after():
            update_momentum(model.backbone, model.backbone_momentum, m=h.momentum_base)
            update_momentum(model.head, model.head_momentum, m=h.momentum_base)
    elif spec.method == "simsiam":
        model.head = M.SimSiamProjectionHead(dim, h.proj_hidden_dim, h.proj_dim)
        model.predictor = M.SimSiamPredictionHead(h.proj_dim, h.pred_hidden_dim, h.proj_dim)
        criterion = L.NegativeCosineSimilarity()

        def loss_fn():
            z0, z1 = (model.head(model.backbone(x)) for x in (x0, x1))
            p0, p1 = model.predictor(z0), model.predictor(z1)
            return 0.5 * (criterion(p0, z1.detach()) + criterion(p1, z0.detach()))
    elif spec.method in ("barlow_twins", "vicreg"):
        model.head = M.BarlowTwinsProjectionHead(dim, h.proj_hidden_dim, h.proj_dim)
        criterion = (L.BarlowTwinsLoss(lambda_param=h.lambda_offdiag) if spec.method == "barlow_twins" else
                     L.VICRegLoss(lambda_param=h.sim_coeff, mu_param=h.std_coeff, nu_param=h.cov_coeff))

        def loss_fn():
            return criterion(model.head(model.backbone(x0)), model.head(model.backbone(x1)))
    else:
        raise KeyError(f"no lightly peer for {spec.method}")
    model.to(spec.device).train()
    optimizer = _peer_optimizer(model, cfg)
    return Runner("lightly", 2 * spec.batch, _simple_step(spec, model, optimizer, loss_fn, after), [model])


BUILDERS: dict[str, Callable[[StepSpec], Runner]] = {
    "ours": build_ours, "pytorchvideo": build_pytorchvideo, "lightly": build_lightly}


def build_runner(impl: str, spec: StepSpec) -> Runner:
    return BUILDERS[impl](spec)
