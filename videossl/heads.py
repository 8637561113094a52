"""Heads that turn backbone features ``(B, D)`` into embeddings: projection MLPs and predictors.

Split into a package when it grows past ~500 lines (DINO head, prototypes and decoders come with their methods).
"""
from __future__ import annotations

import itertools
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


def mlp(
    in_dim: int,
    hidden_dim: int,
    out_dim: int,
    num_layers: int = 2,
    batch_norm: bool = True,
    last_batch_norm: bool = False,
) -> nn.Sequential:
    """``(B, in_dim)`` -> ``(B, out_dim)``: ``num_layers`` linear layers with BN + ReLU between them.

    SimCLR (Chen et al. 2020): 2 layers, no BN on the output. BYOL (Grill et al. 2020): 2 layers, hidden 4096,
    output 256. SimSiam / Barlow Twins use 3 layers with BN on the output (``last_batch_norm=True``).
    """
    layers: list[nn.Module] = []
    dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
    for i in range(num_layers):
        last = i == num_layers - 1
        followed_by_norm = (batch_norm and not last) or (last and last_batch_norm)
        layers.append(nn.Linear(dims[i], dims[i + 1], bias=not followed_by_norm))
        if not last:
            if batch_norm:
                layers.append(nn.BatchNorm1d(dims[i + 1]))
            layers.append(nn.ReLU(inplace=True))
        elif last_batch_norm:
            layers.append(nn.BatchNorm1d(dims[i + 1], affine=False))
    return nn.Sequential(*layers)


class ProjectionHead(nn.Sequential):
    """Projection MLP ``(B, D)`` -> ``(B, out_dim)`` (SimCLR's g(.), BYOL's projector)."""

    def __init__(self, in_dim: int, hidden_dim: int = 512, out_dim: int = 128, num_layers: int = 2,
                 batch_norm: bool = True, last_batch_norm: bool = False):
        super().__init__(*mlp(in_dim, hidden_dim, out_dim, num_layers, batch_norm, last_batch_norm))


class PredictionHead(nn.Sequential):
    """Predictor MLP ``(B, D)`` -> ``(B, D)`` (BYOL's q(.), SimSiam's h(.)): Linear-BN-ReLU-Linear."""

    def __init__(self, dim: int, hidden_dim: int = 512):
        super().__init__(*mlp(dim, hidden_dim, dim, num_layers=2))


# ---- heads of the joint-embedding methods (DINO, SwAV) and MAE's decoder ---------------------------


class DINOHead(nn.Module):
    """DINO's projection head (Caron et al., ICCV 2021, sec. 3.1 / appendix): ``(B, in_dim)`` -> ``(B, out_dim)``.

    A ``num_layers`` MLP (GELU, hidden 2048) to a ``bottleneck_dim`` (256) vector, L2-normalised, then a
    weight-normalised linear layer to ``out_dim`` (65536) logits without bias. ``norm_last_layer`` freezes the
    weight-norm magnitude g = 1 (DINO's default; the paper recommends False for ViT-B stability). ``use_bn``
    (DINO's ``--use_bn_in_head``, default False) puts a ``BatchNorm1d`` after every hidden linear layer
    (Linear -> BN -> GELU): it rescales per-sample differences to unit variance over the batch, which a backbone
    without BatchNorm whose features barely vary (a ViT's CLS token) otherwise lacks, leaving every sample the
    same teacher target and the outputs to collapse to uniform.
    """

    def __init__(self, in_dim: int, out_dim: int = 65536, hidden_dim: int = 2048, bottleneck_dim: int = 256,
                 num_layers: int = 3, norm_last_layer: bool = True, use_bn: bool = False):
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [bottleneck_dim]
        layers: list[nn.Module] = []
        for i in range(num_layers):
            layers.append(nn.Linear(dims[i], dims[i + 1]))
            if i < num_layers - 1:
                layers += [nn.BatchNorm1d(dims[i + 1])] if use_bn else []
                layers.append(nn.GELU())
        self.mlp = nn.Sequential(*layers)
        for m in self.mlp:
            if isinstance(m, nn.Linear):  # DINO: trunc_normal(std=.02), zero bias
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.last_layer = weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))
        magnitude = self.last_layer.parametrizations.weight.original0
        with torch.no_grad():
            magnitude.fill_(1.0)
        magnitude.requires_grad_(not norm_last_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.normalize(self.mlp(x), dim=-1)
        return self.last_layer(x)


class Prototypes(nn.Module):
    """SwAV's prototypes (Caron et al., NeurIPS 2020): ``(B, D)`` normalised embeddings -> ``(B, K)`` scores
    against K unit-norm prototype vectors (a bias-free linear layer whose rows are re-normalised after every
    optimizer step, ``normalize_``). K = 3000 for ImageNet."""

    def __init__(self, dim: int, num_prototypes: int = 3000):
        super().__init__()
        self.layer = nn.Linear(dim, num_prototypes, bias=False)
        self.normalize_()

    @property
    def weight(self) -> torch.Tensor:
        return self.layer.weight

    @torch.no_grad()
    def normalize_(self) -> None:
        self.layer.weight.copy_(nn.functional.normalize(self.layer.weight, dim=1))

    def forward(self, z: torch.Tensor, frozen: bool = False) -> torch.Tensor:
        """``frozen``: the scores carry no gradient to the prototypes (SwAV freezes them for the first
        iterations); the weight still takes part with a zero gradient, so DDP sees every parameter used."""
        w = self.layer.weight
        if frozen:
            w = w.detach() + 0.0 * w
        return z @ w.T


def sinusoid_position_table(num_positions: int, dim: int) -> torch.Tensor:
    """Fixed 1D sine-cosine position table ``(num_positions, dim)`` (Vaswani et al. 2017; VideoMAE's decoder)."""
    position = torch.arange(num_positions, dtype=torch.float32).unsqueeze(1)
    freq = torch.pow(10000.0, -torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    table = torch.zeros(num_positions, dim)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return table


class MAEDecoder(nn.Module):
    """MAE's light decoder (He et al., CVPR 2022, sec. 3; VideoMAE: 4 blocks, 384-d for ViT-B).

    ``forward(visible (B, N_keep, enc_dim), keep_index (B, N_keep), num_tokens N)`` -> ``(B, N, patch_dim)``:
    projects the visible tokens, puts them back at their positions among N learned mask tokens, adds a
    fixed sinusoid position table over the (t, h, w)-ordered tokens and runs ``depth`` pre-norm transformer
    blocks; a linear layer predicts each token's pixels.
    """

    def __init__(self, enc_dim: int, patch_dim: int, dim: int = 384, depth: int = 4, num_heads: int = 6,
                 mlp_ratio: float = 4.0):
        super().__init__()
        self.embed = nn.Linear(enc_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        block = nn.TransformerEncoderLayer(dim, num_heads, int(dim * mlp_ratio), dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.predict = nn.Linear(dim, patch_dim)

    def forward(self, visible: torch.Tensor, keep_index: torch.Tensor, num_tokens: int) -> torch.Tensor:
        b, _, _ = visible.shape
        x = self.mask_token.expand(b, num_tokens, -1).to(visible.dtype).clone()
        x = x.scatter(1, keep_index.unsqueeze(-1).expand(-1, -1, x.shape[-1]), self.embed(visible).to(x.dtype))
        x = x + sinusoid_position_table(num_tokens, x.shape[-1]).to(x.device, x.dtype)
        return self.predict(self.norm(self.blocks(x)))


# ---- V-JEPA's predictor: a narrow ViT from context tokens to the features of the masked tokens


def _sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """``(M,)`` positions -> ``(M, dim)``: ``[sin(p w), cos(p w)]`` with ``w_i = 10000^(-i / (dim/2))`` (MAE's table)."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    angles = positions.to(torch.float64).unsqueeze(1) * omega
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def sincos_position_table_3d(grid: tuple[int, int, int], dim: int, uniform_power: bool = True) -> torch.Tensor:
    """Fixed 3D sine-cosine table ``(t * h * w, dim)`` over (t, h, w)-ordered tokens: time, height and width tables
    concatenated. ``uniform_power``: each axis gets ``2 * ceil(dim / 6)`` channels (cut to ``dim``), else time ``dim/2``
    and height / width ``dim/4`` each (facebookresearch/jepa ``src/models/utils/pos_embs.py``
    ``get_3d_sincos_pos_embed``; ``model.uniform_power: true`` in ``configs/pretrain/vitl16.yaml``)."""
    if uniform_power:
        d_t = d_h = d_w = 2 * -(-dim // 6)
    else:
        d_t, d_h, d_w = dim // 2, dim // 4, dim // 4
    t, h, w = torch.meshgrid(*(torch.arange(n) for n in grid), indexing="ij")
    table = torch.cat([_sincos_1d(d_t, t.flatten()), _sincos_1d(d_h, h.flatten()), _sincos_1d(d_w, w.flatten())], 1)
    return table[:, :dim].float()


class JEPAPredictor(nn.Module):
    """V-JEPA's predictor (Bardes et al. 2024, sec. 3.1; facebookresearch/jepa ``src/models/predictor.py``
    ``VisionTransformerPredictor`` with ``use_mask_tokens=True``).

    ``forward(context (B, Nc, enc_dim), context_index (B, Nc), target_index (B, Nt), grid, mask_set)`` ->
    ``(B, Nt, enc_dim)``: the context tokens are mapped to ``dim`` and given the fixed 3D sine-cosine position of
    their token; one learned mask token per mask set (zero-initialised: ``zero_init_mask_tokens``) plus the position
    of each target token stands for the tokens to predict; ``depth`` pre-norm transformer blocks run over both;
    the target tokens are normalised and projected back to ``enc_dim``. Initialisation as the reference's: truncated
    normal (std 0.02) linear weights, zero biases, and block ``i``'s output projections (attention and MLP) divided
    by ``sqrt(2 i)`` (``_rescale_blocks``).
    """

    def __init__(self, enc_dim: int, dim: int = 384, depth: int = 12, num_heads: int = 12, num_mask_tokens: int = 2,
                 mlp_ratio: float = 4.0, uniform_power: bool = True, init_std: float = 0.02):
        super().__init__()
        self.uniform_power = uniform_power
        self.embed = nn.Linear(enc_dim, dim)
        self.mask_tokens = nn.Parameter(torch.zeros(num_mask_tokens, dim))
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, num_heads, int(dim * mlp_ratio), dropout=0.0, activation="gelu",
                                       layer_norm_eps=1e-6, batch_first=True, norm_first=True)
            for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.project = nn.Linear(dim, enc_dim)
        self._init_weights(init_std)

    @torch.no_grad()
    def _init_weights(self, std: float) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=std)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.MultiheadAttention):  # its q, k, v projection is one parameter
                nn.init.trunc_normal_(module.in_proj_weight, std=std)
                nn.init.zeros_(module.in_proj_bias)
        for i, block in enumerate(self.blocks, start=1):
            block.self_attn.out_proj.weight.div_((2.0 * i) ** 0.5)
            block.linear2.weight.div_((2.0 * i) ** 0.5)

    def forward(self, context: torch.Tensor, context_index: torch.Tensor, target_index: torch.Tensor,
                grid: tuple[int, int, int], mask_set: int = 0) -> torch.Tensor:
        x = self.embed(context)
        table = sincos_position_table_3d(grid, x.shape[-1], self.uniform_power).to(x.device, x.dtype)
        x = x + table[context_index]
        queries = self.mask_tokens[mask_set].to(x.dtype) + table[target_index]  # (B, Nt, dim)
        h = torch.cat([x, queries], dim=1)
        for block in self.blocks:
            h = block(h)
        return self.project(self.norm(h[:, context.shape[1]:]))


# ---- audio-visual correspondence heads (L3, AVE-Net): saved as encoder_avc_head.pt and read by `videossl eval avc`


class L3FusionHead(nn.Sequential):
    """L3's fusion network (fig. 2): concatenated ``(B, Dv)`` + ``(B, Da)`` features -> fc -> ReLU -> fc ->
    ``(B, 2)`` logits (class 1 = they correspond). Saved by a run as ``encoder_avc_head.pt`` (``AVC_HEADS`` entry
    ``l3_fusion``) so ``videossl eval avc`` scores pairs without the method class; ``audio`` records the audio
    geometry the towers were trained with (rate, seconds, n_mels), which evaluation reuses."""

    num_features = 2  # what save_encoder records: the head's output size

    def __init__(self, video_dim: int, audio_dim: int, hidden_dim: int = 128, audio: dict[str, Any] | None = None):
        super().__init__(nn.Linear(video_dim + audio_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, 2))
        self.audio = dict(audio or {})

    def correspondence_logits(self, video_features: torch.Tensor, audio_features: torch.Tensor) -> torch.Tensor:
        """``(B, Dv)`` and ``(B, Da)`` backbone features -> ``(B, 2)`` logits."""
        return self(torch.cat([video_features, audio_features], dim=1))

    def pair_scores(self, video_features: torch.Tensor, audio_features: torch.Tensor) -> torch.Tensor:
        """Log-odds of correspondence of every ``(Nv, Dv)`` clip with every ``(Na, Da)`` audio: ``(Nv, Na)``
        (``Nv * Na`` fusion passes)."""
        nv, na = video_features.shape[0], audio_features.shape[0]
        logits = self.correspondence_logits(video_features.repeat_interleave(na, dim=0), audio_features.repeat(nv, 1))
        return (logits[:, 1] - logits[:, 0]).view(nv, na)


def embedding_head(in_dim: int, dim: int) -> nn.Sequential:
    """AVE-Net's fc-ReLU-fc ``(..., in_dim)`` -> ``(..., dim)`` (no BN: it also runs per map position)."""
    return nn.Sequential(nn.Linear(in_dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))


class AVENetHead(nn.Module):
    """AVE-Net's correspondence head on backbone features: both embedding heads, L2 normalisation, the Euclidean
    distance and its 1 -> 2 calibration. Saved by a run as ``encoder_avc_head.pt`` (``AVC_HEADS`` entry
    ``avenet_distance``, sharing the method's modules) so ``videossl eval avc`` scores pairs without the method
    class; ``audio`` records the audio geometry (rate, seconds, n_mels) the towers were trained with."""

    num_features = 2  # what save_encoder records: the head's output size

    def __init__(self, video_dim: int, audio_dim: int, embed_dim: int = 128, audio: dict[str, Any] | None = None):
        super().__init__()
        self.video_head = embedding_head(video_dim, embed_dim)
        self.audio_head = embedding_head(audio_dim, embed_dim)
        self.calibrate = nn.Linear(1, 2)
        self.audio = dict(audio or {})

    def correspondence_logits(self, video_features: torch.Tensor, audio_features: torch.Tensor) -> torch.Tensor:
        """``(B, Dv)`` and ``(B, Da)`` backbone features -> ``(B, 2)`` logits from the embeddings' distance."""
        v = F.normalize(self.video_head(video_features), dim=-1)
        a = F.normalize(self.audio_head(audio_features), dim=-1)
        return self.calibrate((v - a).norm(dim=-1, keepdim=True))

    def pair_scores(self, video_features: torch.Tensor, audio_features: torch.Tensor) -> torch.Tensor:
        """Minus the Euclidean distance of every clip embedding to every audio embedding: ``(Nv, Na)``."""
        v = F.normalize(self.video_head(video_features), dim=-1)
        return -torch.cdist(v, F.normalize(self.audio_head(audio_features), dim=-1))

    def localisation_maps(self, tokens: torch.Tensor, audio_features: torch.Tensor) -> torch.Tensor:
        """Where the sound comes from: a convolutional video backbone's ``(B, D, t, h, w)`` tokens and the
        ``(B, Da)`` audio features -> ``(B, h, w)`` cosine of each position's embedding with the audio's."""
        return localisation_maps(tokens, self.video_head, F.normalize(self.audio_head(audio_features), dim=-1))


def localisation_maps(tokens: torch.Tensor, video_head: nn.Module, sound: torch.Tensor) -> torch.Tensor:
    """AVE-Net's localisation: ``(B, D, t, h, w)`` tokens (time averaged), each position embedded by ``video_head``
    and L2-normalised, against unit ``(B, E)`` audio embeddings ``sound`` -> ``(B, h, w)`` cosines in [-1, 1]."""
    per_position = tokens.mean(dim=2).permute(0, 2, 3, 1)  # (B, h, w, D)
    local = F.normalize(video_head(per_position), dim=-1)  # (B, h, w, E)
    return torch.einsum("bhwe,be->bhw", local, sound)


class EmbeddingPairHead(nn.Module):
    """AVID's two projections (``ProjectionHead`` each) on backbone features; a pair's score is the cosine of the
    unit embeddings (AVID's cross-modal similarity). Saved by a run as ``encoder_av_head.pt`` (``AV_PAIR_HEADS`` entry
    ``avid_embedding``, sharing the method's modules) for audio-visual retrieval without the method class; ``audio``
    records the audio geometry (rate, seconds, n_mels) the towers were trained with."""

    num_features = 1  # what save_encoder records: one score per pair

    def __init__(self, video_dim: int, audio_dim: int, hidden_dim: int, proj_dim: int, num_layers: int = 2,
                 batch_norm: bool = True, audio: dict[str, Any] | None = None):
        super().__init__()
        head = {"num_layers": num_layers, "batch_norm": batch_norm}
        self.video_head = ProjectionHead(video_dim, hidden_dim, proj_dim, **head)
        self.audio_head = ProjectionHead(audio_dim, hidden_dim, proj_dim, **head)
        self.audio = dict(audio or {})

    def pair_scores(self, video_features: torch.Tensor, audio_features: torch.Tensor) -> torch.Tensor:
        """``(Nv, Dv)`` and ``(Na, Da)`` backbone features -> ``(Nv, Na)`` cosines of their embeddings."""
        v = F.normalize(self.video_head(video_features), dim=-1)
        return v @ F.normalize(self.audio_head(audio_features), dim=-1).T


# ---- BraVe's projector and predictor (Recasens et al., ICCV 2021; google-deepmind/brave modules.py) ----


def brave_projector(in_dim: int, hidden_dim: int = 512, out_dim: int = 128) -> nn.Sequential:
    """``(B, in_dim)`` -> ``(B, out_dim)``: Linear-BN-ReLU-Linear-BN, BN with scale and offset on the output too
    (BraVe code, modules.py ``Projector``)."""
    return nn.Sequential(nn.Linear(in_dim, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True),
                         nn.Linear(hidden_dim, out_dim, bias=False), nn.BatchNorm1d(out_dim))


def brave_predictor(dim: int = 128, hidden_dim: int = 4096, num_layers: int = 3) -> nn.Sequential:
    """``(B, dim)`` -> ``(B, dim)``: ``num_layers`` linear layers with BN + ReLU between them and a plain linear
    output (BraVe code, modules.py ``Predictor``: 128 -> 4096 -> 128 since 5633be0, 128 -> 4096 -> 4096 -> 128
    at 1ae5f0a)."""
    return mlp(dim, hidden_dim, dim, num_layers=num_layers)


class PairHeads(nn.Module):
    """Projector and predictor of one side of one (narrow, broad) pair: ``(B, D)`` -> (projection, prediction)."""

    def __init__(self, in_dim: int, hidden_dim: int, proj_dim: int, pred_hidden_dim: int, pred_num_layers: int = 3):
        super().__init__()
        self.projector = brave_projector(in_dim, hidden_dim, proj_dim)
        self.predictor = brave_predictor(proj_dim, pred_hidden_dim, pred_num_layers)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        projection = self.projector(features)
        return projection, self.predictor(projection)


class SharedHeads(nn.Module):
    """One projector and predictor for every view (BraVe code since 5633be0: ``ProjectAndPredict`` named
    ``shared_project``, called on the narrow and on every broad feature). The projector's first linear layer
    depends on the input width, so there is one per distinct backbone width (``inputs``); BraVe's views are all
    2048-d, ours can differ (audio_resnet18 is 512-d), and everything after that layer is shared."""

    def __init__(self, in_dims: list[int], hidden_dim: int, proj_dim: int, pred_hidden_dim: int,
                 pred_num_layers: int = 2):
        super().__init__()
        self.inputs = nn.ModuleDict({str(d): nn.Linear(d, hidden_dim, bias=False) for d in sorted(set(in_dims))})
        self.projector = nn.Sequential(nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True),
                                       nn.Linear(hidden_dim, proj_dim, bias=False), nn.BatchNorm1d(proj_dim))
        self.predictor = brave_predictor(proj_dim, pred_hidden_dim, pred_num_layers)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        projection = self.projector(self.inputs[str(features.shape[-1])](features))
        return projection, self.predictor(projection)


class BravePairHead(nn.Module):
    """BraVe V/A's audio-visual score on backbone features: the narrow clip's prediction of the audio projection
    against that projection, as a cosine ``(Nv, Na)``. Holds the narrow and the broad ``PairHeads`` of the audio
    pair, or the ``SharedHeads`` of every view when ``shared_dims`` lists their input widths. Saved by a run as
    ``encoder_av_head.pt`` (``AV_PAIR_HEADS`` entry ``brave_audio``, sharing the method's modules)."""

    num_features = 1  # what save_encoder records: one score per pair

    def __init__(self, narrow_dim: int, audio_dim: int, hidden_dim: int, proj_dim: int, pred_hidden_dim: int,
                 pred_num_layers: int = 3, shared_dims: list[int] | None = None, audio: dict[str, Any] | None = None):
        super().__init__()
        if shared_dims:
            self.heads = SharedHeads(list(shared_dims), hidden_dim, proj_dim, pred_hidden_dim, pred_num_layers)
        else:
            self.narrow = PairHeads(narrow_dim, hidden_dim, proj_dim, pred_hidden_dim, pred_num_layers)
            self.broad = PairHeads(audio_dim, hidden_dim, proj_dim, pred_hidden_dim, pred_num_layers)
        self.audio = dict(audio or {})

    def pair_scores(self, video_features: torch.Tensor, audio_features: torch.Tensor) -> torch.Tensor:
        """``(Nv, Dv)`` narrow clip and ``(Na, Da)`` audio features -> ``(Nv, Na)`` cosines."""
        narrow, broad = (self.heads, self.heads) if hasattr(self, "heads") else (self.narrow, self.broad)
        _, prediction = narrow(video_features)
        projection, _ = broad(audio_features)
        return F.normalize(prediction, dim=-1) @ F.normalize(projection, dim=-1).T


# encoder_avc_head.pt "backbone" name -> head class, for evaluation without the method classes
AVC_HEADS: dict[str, type[nn.Module]] = {"l3_fusion": L3FusionHead, "avenet_distance": AVENetHead}
# every head that scores (clip, audio) pairs from backbone features (``pair_scores``): audio-visual retrieval and
# synchronisation read encoder_avc_head.pt (L3, AVE-Net) or encoder_av_head.pt (AVID, BraVe V/A)
AV_PAIR_HEADS: dict[str, type[nn.Module]] = {**AVC_HEADS, "avid_embedding": EmbeddingPairHead,
                                              "brave_audio": BravePairHead}


class ClassifierHead(nn.Sequential):
    """``(B, in_dim)`` -> ``(B, num_classes)``: Linear-BN-ReLU-Dropout-Linear (``hidden_dim=0``: one Linear); the
    classic pretext tasks' classifier.

    The fc7 / fc8 stack these papers put on concatenated features (Misra et al. 2016, Noroozi & Favaro 2016).
    """

    def __init__(self, in_dim: int, num_classes: int, hidden_dim: int = 512, dropout: float = 0.0):
        if hidden_dim <= 0:
            super().__init__(nn.Linear(in_dim, num_classes))
        else:
            super().__init__(nn.Linear(in_dim, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim),
                             nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden_dim, num_classes))


class PairwiseFusionHead(nn.Module):
    """Order classification from ``N`` per-element features by pairwise feature fusion.

    OPN (Lee et al., ICCV 2017, fig. 3) and VCOP (Xu et al., CVPR 2019, fig. 2): every pair ``(i, j), i < j``
    of element features is concatenated and mapped by a shared ``Linear(2D, pair_dim) + ReLU`` (OPN's fc7,
    VCOP's 512-d pair layer); the ``N (N - 1) / 2`` pair features are concatenated, dropped out (VCOP: 0.5)
    and classified by one Linear. ``(B, N, D)`` -> ``(B, num_classes)``.
    """

    def __init__(self, dim: int, num_elements: int, num_classes: int, pair_dim: int = 512, dropout: float = 0.5):
        super().__init__()
        self.pairs = list(itertools.combinations(range(num_elements), 2))
        self.pair = nn.Sequential(nn.Linear(2 * dim, pair_dim), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(dropout)
        self.classify = nn.Linear(pair_dim * len(self.pairs), num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        i = torch.tensor([p[0] for p in self.pairs], device=features.device)
        j = torch.tensor([p[1] for p in self.pairs], device=features.device)
        fused = self.pair(torch.cat([features[:, i], features[:, j]], dim=-1))  # (B, P, pair_dim)
        return self.classify(self.dropout(fused.flatten(1)))
