"""Video transformers built from ``transformers`` configs (weights only from local files).

- VideoMAE (Tong et al., NeurIPS 2022): joint space-time ViT on tubelets (2x16x16), fixed sinusoidal
  position table. ``forward_features`` = mean of the patch tokens (VideoMAE has no CLS token).
- TimeSformer (Bertasius et al., ICML 2021): divided space-time attention (time, then space, per block),
  16x16 patches per frame, separate space and time embeddings. ``forward_features`` = CLS token.
- ViViT (Arnab et al., ICCV 2021), model 1 (joint attention) on tubelets (2x16x16). Features = CLS token.

The transformers model is kept whole under ``self.model`` (weights import/export unchanged), but the
forward pass is driven here so that:

* any T, H, W (multiples of ``tubelet_size`` / ``patch_size``) work: position embeddings are interpolated
  from the built grid to the input's grid -- VideoMAE's sinusoid table and ViViT's joint table trilinearly
  in (t, h, w), TimeSformer's space table and time table separately with ``nearest`` as SVT does
  (Ranasinghe et al., CVPR 2022), which SVT's small, short local views need;
* attention runs through ``scaled_dot_product_attention`` (VideoMAE, ViViT: ``attn_implementation="sdpa"``;
  TimeSformer's block is re-run here with SDPA on the same parameters, as transformers' version is eager);
* MAE can run the encoder on visible tokens only: ``forward_tokens(x, keep_index)``.

Tokens: ``forward_tokens`` returns ``(B, N, D)`` patch tokens **without** the CLS token, after the final
LayerNorm, ordered (t, h, w) with ``N = T/tubelet * H/patch * W/patch``; ``cls_token(x)`` gives the CLS
``(B, D)`` where the model has one. Taps ``block{i}`` are the patch tokens after block ``i``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .base import Backbone
from .weights import load_pretrained


def _interpolate_grid(table: torch.Tensor, src: tuple[int, ...], dst: tuple[int, ...], mode: str) -> torch.Tensor:
    """Position table ``(1, prod(src), D)`` laid out on grid ``src`` -> ``(1, prod(dst), D)`` on ``dst``."""
    if tuple(src) == tuple(dst):
        return table
    d = table.shape[-1]
    grid = table.reshape(1, *src, d).movedim(-1, 1)  # (1, D, *src)
    if mode == "linear":
        mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(src)]
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    grid = F.interpolate(grid.float(), size=tuple(dst), mode=mode, **kwargs).to(table.dtype)
    return grid.movedim(1, -1).reshape(1, -1, d)


class VideoTransformer(Backbone):
    """Shared driver: subclasses give ``_embed``, ``_blocks`` and ``_final_norm``."""

    library_format = "transformers"
    has_cls: bool = True
    strip_prefixes: tuple[str, ...] = ()
    patch_size: int
    tubelet_size: int
    # train.activation_checkpointing: each block's activations are recomputed in backward (torch.utils.checkpoint)
    activation_checkpointing: bool = False

    def _finish(self, num_layers: int, pretrained: str) -> None:
        self.num_features = self.model.config.hidden_size
        self.tap_names = tuple(f"block{i}" for i in range(num_layers))
        if pretrained:
            load_pretrained(self, pretrained, self.strip_prefixes)

    def grid(self, x: torch.Tensor) -> tuple[int, int, int]:
        """Token grid ``(t, h, w)`` of an input ``(B, C, T, H, W)``; a clear error when it does not divide."""
        _, _, t, h, w = x.shape
        if t % self.tubelet_size or h % self.patch_size or w % self.patch_size:
            raise ValueError(
                f"{type(self).__name__}: input T={t}, H={h}, W={w} must be multiples of tubelet_size="
                f"{self.tubelet_size} and patch_size={self.patch_size}"
            )
        return t // self.tubelet_size, h // self.patch_size, w // self.patch_size

    def encode(
        self, x: torch.Tensor, keep_index: torch.Tensor | None = None, taps: set[str] | None = None
    ) -> tuple[torch.Tensor | None, torch.Tensor, dict[str, torch.Tensor]]:
        """``(B, C, T, H, W)`` -> ``(cls (B, D) or None, patch tokens (B, N, D), taps)``.

        ``keep_index``: ``(B, N_keep)`` indices into the (t, h, w)-ordered patch tokens; only those go
        through the blocks (MAE's encoder on visible tokens; Tong et al. 2022, He et al. 2022).
        """
        grid = self.grid(x)
        cls, tokens = self._embed(x, grid)
        if keep_index is not None:
            tokens = tokens.gather(1, keep_index.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        return self._run_blocks(cls, tokens, grid, keep_index is not None, taps or set())

    def _run_blocks(self, cls, tokens, grid, masked: bool, wanted: set[str]):
        h = tokens if cls is None else torch.cat([cls, tokens], dim=1)
        n_cls = 0 if cls is None else 1
        taps = {}
        checkpointed = self.activation_checkpointing and self.training and torch.is_grad_enabled()
        for i, block in enumerate(self._blocks()):
            if checkpointed:
                h = checkpoint(self._block_forward, block, h, grid, masked, use_reentrant=False)
            else:
                h = self._block_forward(block, h, grid, masked)
            if f"block{i}" in wanted:
                taps[f"block{i}"] = h[:, n_cls:]
        h = self._final_norm(h)
        return (h[:, 0] if n_cls else None), h[:, n_cls:], taps

    def _block_forward(self, block: nn.Module, h: torch.Tensor, grid, masked: bool) -> torch.Tensor:
        return block(h, None) if self._block_takes_mask else block(h)

    _block_takes_mask = True

    def forward_tokens(self, x: torch.Tensor, keep_index: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> patch tokens ``(B, N, D)`` (or ``(B, N_keep, D)``), CLS excluded."""
        return self.encode(x, keep_index)[1]

    def cls_token(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` CLS token after the final norm (models without CLS: mean of the patch tokens)."""
        return self.pooled_features(x)

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        cls, tokens, _ = self.encode(x)
        return cls if cls is not None else tokens.mean(dim=1)

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """Mean over tokens ``(B, N, D)`` -> ``(B, D)``."""
        return tokens.mean(dim=1)

    def feature_taps(self, x: torch.Tensor, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        return self.encode(x, taps=set(names or self.tap_names))[2]


class VideoMAEBackbone(VideoTransformer):
    """VideoMAE ViT: ``(B, C, T, H, W)`` -> ``(B, D)`` mean of the patch tokens."""

    has_cls = False
    strip_prefixes = ("videomae.",)

    def __init__(self, hidden_size: int = 768, num_layers: int = 12, num_heads: int = 12, patch_size: int = 16,
                 tubelet_size: int = 2, num_frames: int = 16, image_size: int = 224, in_channels: int = 3,
                 use_mean_pooling: bool = False, drop_path_rate: float = 0.0, pretrained: str = ""):
        super().__init__()
        from transformers import VideoMAEConfig, VideoMAEModel

        config = VideoMAEConfig(
            image_size=image_size, patch_size=patch_size, num_channels=in_channels, num_frames=num_frames,
            tubelet_size=tubelet_size, hidden_size=hidden_size, num_hidden_layers=num_layers,
            num_attention_heads=num_heads, intermediate_size=4 * hidden_size, use_mean_pooling=use_mean_pooling,
            drop_path_rate=drop_path_rate, attn_implementation="sdpa",
        )
        self.in_channels, self.patch_size, self.tubelet_size = in_channels, patch_size, tubelet_size
        self.model = VideoMAEModel(config)
        self.built_grid = (num_frames // tubelet_size, image_size // patch_size, image_size // patch_size)
        self._block_takes_mask = False
        self._finish(num_layers, pretrained)

    def _embed(self, x: torch.Tensor, grid) -> tuple[None, torch.Tensor]:
        tokens = self.model.embeddings.patch_embeddings.projection(x).flatten(2).transpose(1, 2)
        table = self.model.embeddings.position_embeddings.to(device=tokens.device, dtype=tokens.dtype)
        return None, tokens + _interpolate_grid(table, self.built_grid, grid, "linear")

    def _blocks(self):
        return self.model.encoder.layer

    def _final_norm(self, h: torch.Tensor) -> torch.Tensor:
        return h if self.model.layernorm is None else self.model.layernorm(h)


class VivitBackbone(VideoTransformer):
    """ViViT (model 1): ``(B, C, T, H, W)`` -> CLS ``(B, D)``."""

    strip_prefixes = ("vivit.",)

    def __init__(self, hidden_size: int = 768, num_layers: int = 12, num_heads: int = 12, patch_size: int = 16,
                 tubelet_size: int = 2, num_frames: int = 32, image_size: int = 224, in_channels: int = 3,
                 pretrained: str = ""):
        super().__init__()
        from transformers import VivitConfig, VivitModel

        config = VivitConfig(
            image_size=image_size, num_frames=num_frames, tubelet_size=[tubelet_size, patch_size, patch_size],
            num_channels=in_channels, hidden_size=hidden_size, num_hidden_layers=num_layers,
            num_attention_heads=num_heads, intermediate_size=4 * hidden_size, attn_implementation="sdpa",
        )
        self.in_channels, self.patch_size, self.tubelet_size = in_channels, patch_size, tubelet_size
        self.model = VivitModel(config, add_pooling_layer=False)
        self.built_grid = (num_frames // tubelet_size, image_size // patch_size, image_size // patch_size)
        self._finish(num_layers, pretrained)

    def _embed(self, x: torch.Tensor, grid) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.model.embeddings
        tokens = emb.patch_embeddings.projection(x).flatten(2).transpose(1, 2)
        table = emb.position_embeddings
        tokens = emb.dropout(tokens + _interpolate_grid(table[:, 1:], self.built_grid, grid, "linear"))
        cls = emb.dropout(emb.cls_token + table[:, :1]).expand(x.shape[0], -1, -1)
        return cls, tokens

    def _blocks(self):
        return self.model.layers

    def _final_norm(self, h: torch.Tensor) -> torch.Tensor:
        return self.model.layernorm(h)


def _sdpa_self_attention(attention: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """transformers' ``TimeSformerAttention`` (qkv + output projection) computed with SDPA: ``(B, N, D)``."""
    inner = attention.attention
    b, n, d = x.shape
    qkv = inner.qkv(x).reshape(b, n, 3, inner.num_heads, d // inner.num_heads).permute(2, 0, 3, 1, 4)
    p = inner.attn_drop.p if attention.training else 0.0
    out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], dropout_p=p)  # scale = head_dim ** -0.5
    return attention.output(out.transpose(1, 2).reshape(b, n, d))


class TimesformerBackbone(VideoTransformer):
    """TimeSformer, divided space-time attention: ``(B, C, T, H, W)`` -> CLS ``(B, D)``.

    ``keep_index`` is not supported: divided attention needs the full (t, h*w) grid.
    """

    strip_prefixes = ("timesformer.",)
    tubelet_size = 1

    def __init__(self, hidden_size: int = 768, num_layers: int = 12, num_heads: int = 12, patch_size: int = 16,
                 num_frames: int = 8, image_size: int = 224, in_channels: int = 3, drop_path_rate: float = 0.0,
                 pretrained: str = ""):
        super().__init__()
        from transformers import TimesformerConfig, TimesformerModel

        config = TimesformerConfig(
            image_size=image_size, patch_size=patch_size, num_channels=in_channels, num_frames=num_frames,
            hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=num_heads,
            intermediate_size=4 * hidden_size, attention_type="divided_space_time",
        )
        if drop_path_rate:
            # transformers 5.23 types TimesformerConfig.drop_path_rate as int and rejects floats on set
            object.__setattr__(config, "drop_path_rate", float(drop_path_rate))
        self.in_channels, self.patch_size = in_channels, patch_size
        self.model = TimesformerModel(config)
        self.built_space = (image_size // patch_size, image_size // patch_size)
        self._finish(num_layers, pretrained)

    def _embed(self, x: torch.Tensor, grid) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.model.embeddings
        b, c, t = x.shape[:3]
        frames = x.transpose(1, 2).reshape(b * t, c, *x.shape[3:])
        tokens = emb.patch_embeddings.projection(frames).flatten(2).transpose(1, 2)  # (B*T, S, D)
        table = emb.position_embeddings
        tokens = emb.pos_drop(tokens + _interpolate_grid(table[:, 1:], self.built_space, grid[1:], "nearest"))
        time_table = _interpolate_grid(emb.time_embeddings, (emb.time_embeddings.shape[1],), grid[:1], "nearest")
        tokens = tokens.reshape(b, t, -1, tokens.shape[-1]) + time_table.unsqueeze(2)  # (B, T, S, D)
        tokens = emb.time_drop(tokens).flatten(1, 2)  # (t, h, w) order
        cls = emb.pos_drop(emb.cls_token + table[:, :1]).expand(b, -1, -1)
        return cls, tokens

    def _blocks(self):
        return self.model.encoder.layer

    def _final_norm(self, h: torch.Tensor) -> torch.Tensor:
        return self.model.layernorm(h)

    def encode(self, x, keep_index=None, taps=None):
        if keep_index is not None:
            raise ValueError("TimesformerBackbone: keep_index is not supported (divided attention needs all tokens)")
        return super().encode(x, None, taps)

    def _block_forward(self, block: nn.Module, h: torch.Tensor, grid, masked: bool) -> torch.Tensor:
        """One divided space-time block (transformers' ``TimesformerLayer``, any grid, SDPA)."""
        t = grid[0]
        b, d = h.shape[0], h.shape[-1]
        cls, tokens = h[:, :1], h[:, 1:].reshape(b, t, -1, d)  # (B, 1, D), (B, T, S, D)
        s = tokens.shape[2]
        # temporal attention: every spatial position attends over time
        xt = tokens.transpose(1, 2).reshape(b * s, t, d)
        res_t = block.drop_path(_sdpa_self_attention(block.temporal_attention, block.temporal_layernorm(xt)))
        res_t = block.temporal_dense(res_t).reshape(b, s, t, d).transpose(1, 2)
        tokens = tokens + res_t
        # spatial attention: every frame attends over space, with its own copy of the CLS token
        xs = torch.cat([cls.expand(b, t, d).reshape(b * t, 1, d), tokens.reshape(b * t, s, d)], dim=1)
        res_s = block.drop_path(_sdpa_self_attention(block.attention, block.layernorm_before(xs)))
        cls_res = res_s[:, 0].reshape(b, t, d).mean(dim=1, keepdim=True)  # average the CLS over frames
        h = torch.cat([cls, tokens.reshape(b, t * s, d)], 1) + torch.cat([cls_res, res_s[:, 1:].reshape(b, t * s, d)], 1)
        return h + block.drop_path(block.output(block.intermediate(block.layernorm_after(h))))


def videomae_vit_s16(**kw) -> Backbone:
    """VideoMAE ViT-S/16, tubelet 2, 16x224x224: 384-d, 12 layers, 6 heads."""
    return VideoMAEBackbone(**{"hidden_size": 384, "num_layers": 12, "num_heads": 6, **kw})


def videomae_vit_b16(**kw) -> Backbone:
    """VideoMAE ViT-B/16, tubelet 2, 16x224x224: 768-d, 12 layers, 12 heads."""
    return VideoMAEBackbone(**{"hidden_size": 768, "num_layers": 12, "num_heads": 12, **kw})


def videomae_vit_l16(**kw) -> Backbone:
    """ViT-L/16 on tubelets 2x16x16, 16x224x224: 1024-d, 24 layers, 16 heads (VideoMAE's ViT-L; V-JEPA's
    ``vit_large``, facebookresearch/jepa ``src/models/vision_transformer.py``)."""
    return VideoMAEBackbone(**{"hidden_size": 1024, "num_layers": 24, "num_heads": 16, **kw})


def timesformer_b16(**kw) -> Backbone:
    """TimeSformer-Base, 8x224x224, 16x16 patches: 768-d, 12 layers."""
    return TimesformerBackbone(**kw)


def vivit_b16x2(**kw) -> Backbone:
    """ViViT-B/16x2 (model 1), 32x224x224: 768-d, 12 layers."""
    return VivitBackbone(**kw)


_TINY = {"hidden_size": 64, "num_layers": 2, "num_heads": 2, "patch_size": 8, "image_size": 32}


def tiny_videomae(**kw) -> Backbone:
    """2 layers, 64-d, 8 px patches, tubelet 2, built for 8x32x32 (CPU tests, MAE smoke runs)."""
    return VideoMAEBackbone(**{**_TINY, "num_frames": 8, **kw})


def tiny_timesformer(**kw) -> Backbone:
    """2 layers, 64-d, 8 px patches, built for 4x32x32 (CPU tests, SVT smoke runs)."""
    return TimesformerBackbone(**{**_TINY, "num_frames": 4, **kw})


def tiny_vivit(**kw) -> Backbone:
    """2 layers, 64-d, tubelet 2x8x8, built for 8x32x32."""
    return VivitBackbone(**{**_TINY, "num_frames": 8, **kw})
