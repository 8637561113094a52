"""The backbone contract every network in ``BACKBONES`` follows (the timm pattern).

- ``forward_features(x)``: ``(B, C, T, H, W)`` video (or ``(B, 1, n_mels, frames)`` / ``(B, 1, samples)``
  audio) -> pooled ``(B, D)`` with ``D = num_features``. ``forward`` is the same.
- ``forward_tokens(x)``: the last feature map before pooling, for methods that need spatial or temporal
  structure (DPC, MAE, SVT): CNNs return ``(B, D, t, h, w)``, transformers ``(B, N, D)`` patch tokens
  (never the CLS token; see ``video_vit.py`` for ``keep_index`` and ``cls_token``).
- ``feature_taps(x, names)``: intermediate outputs at named depths (``tap_names``: ``stage1..4`` for CNNs,
  ``block{i}`` for transformers), for distillation at several depths (ELo). Returns ``{name: tensor}``.

Run-time options shared by all backbones (``create_backbone(name, channels_last=..., compile=...)``):
``channels_last`` stores conv weights and inputs in ``channels_last_3d`` (``channels_last`` for 2D
networks), the fast layout for cuDNN convolutions under bf16; ``compile`` runs ``forward_features`` (not
``forward_tokens`` / ``feature_taps``) through ``torch.compile``. Both leave the numbers unchanged (tested
on CPU; their speed was not measured on a GPU). bf16 comes from the engine's autocast: every backbone runs
under ``torch.autocast(dtype=torch.bfloat16)`` (tested on CPU).
"""
from __future__ import annotations

import torch
from torch import nn


def _eager_forward_features(module: "Backbone", x: torch.Tensor) -> torch.Tensor:
    return module.forward_features(x)


_COMPILED: dict[str, object] = {}


def _compiled_forward_features():
    # One compiled function for all backbones, taking the module as an argument: a deep copy of a
    # backbone (an EMA teacher) then calls its own weights, which a bound compiled method would not.
    if "fn" not in _COMPILED:
        # torch 2.11's inductor asserts on the nested index expressions of the TimeSformer block's backward
        # (``solve_for_tiling``: pytorch/pytorch#191603, fixed after 2.11); its coalescing analysis only
        # picks tile shapes, so turning it off keeps every kernel and loses nothing measurable here.
        import torch._inductor.config as inductor_config

        inductor_config.triton.coalesce_tiling_analysis = False
        _COMPILED["fn"] = torch.compile(_eager_forward_features)
    return _COMPILED["fn"]


class Backbone(nn.Module):
    """Base class: subclasses set ``num_features``, ``tap_names`` and implement ``forward_tokens``.

    Class attributes a subclass may set: ``modality`` ("video" or "audio"), ``library_format``
    ("torchvision", "pytorchvideo", "transformers" or "" when the weights are only ours) and
    ``library_prefix``, the prefix of the wrapped library model in our ``state_dict`` (weights import and
    export strip or add it).
    """

    num_features: int
    modality: str = "video"  # "video" or "audio"
    tap_names: tuple[str, ...] = ()
    library_format: str = ""
    library_prefix: str = "model."
    memory_format: torch.memory_format | None = None  # set by ``set_runtime_options(channels_last=True)``
    compiled: bool = False

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """Global average pool of ``forward_tokens`` output: ``(B, D, *spatial)`` -> ``(B, D)``."""
        return tokens.flatten(2).mean(dim=2)

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """Eager ``forward_features``; subclasses that pool differently (CLS token) override this."""
        return self.pool(self.forward_tokens(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.compiled and not torch.compiler.is_compiling():
            return _compiled_forward_features()(self, x)
        return self.pooled_features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)

    def feature_taps(self, x: torch.Tensor, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} exposes no feature taps")

    # ---- run-time options -------------------------------------------------------------------------
    def set_runtime_options(self, channels_last: bool = False, compile: bool = False) -> "Backbone":
        """``channels_last``: only backbones with convolutions use it (3D: ``channels_last_3d``).

        ``compile``: ``forward_features`` goes through ``torch.compile`` (first call compiles).
        """
        if channels_last and self.prefers_channels_last():
            self.memory_format = torch.channels_last_3d if self.conv_dims() == 3 else torch.channels_last
            self.to(memory_format=self.memory_format)  # converts the 4-D / 5-D conv weights only
        self.compiled = bool(compile)
        return self

    def conv_dims(self) -> int:
        """3 when the network is made of ``Conv3d`` layers, 2 for ``Conv2d``, 0 for none."""
        if any(isinstance(m, nn.Conv3d) for m in self.modules()):
            return 3
        return 2 if any(isinstance(m, nn.Conv2d) for m in self.modules()) else 0

    def prefers_channels_last(self) -> bool:
        """Convolutional backbones gain from channels-last; transformers (one patch conv) do not."""
        return self.conv_dims() > 0 and not self.library_format == "transformers"

    def to_memory_format(self, x: torch.Tensor) -> torch.Tensor:
        """Input ``(B, C, T, H, W)`` in the memory format chosen by ``set_runtime_options``."""
        if self.memory_format is None:
            return x
        if x.dim() == 5 and self.memory_format is torch.channels_last_3d:
            return x.contiguous(memory_format=torch.channels_last_3d)
        if x.dim() == 4 and self.memory_format is torch.channels_last:
            return x.contiguous(memory_format=torch.channels_last)
        return x



def replace_input_conv(model: nn.Module, in_channels: int) -> nn.Module:
    """Swap the first convolution of ``model`` for one taking ``in_channels`` (2-channel flow, grayscale).

    A fresh layer of the same kernel, stride and padding; pretrained RGB weights are adapted to it when
    they are loaded (``weights.py``). Returns ``model``.
    """
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            if module.in_channels == in_channels:
                return model
            new = type(module)(
                in_channels, module.out_channels, module.kernel_size, module.stride, module.padding,
                dilation=module.dilation, groups=1, bias=module.bias is not None,
            )
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
            return model
    raise ValueError(f"{type(model).__name__} has no convolution to take {in_channels} input channels")
