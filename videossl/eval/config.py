"""Typed configuration of the evaluation protocols (linear probe, kNN, fine-tune, retrieval).

One ``EvalConfig`` drives every protocol, so the quickstart can run all of them from one object and a
recipe YAML can hold the settings of several. Hyperparameters carry the paper they come from.
``load_eval_config`` builds it from an encoder, an optional recipe and ``a.b=value`` overrides.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import OmegaConf

from videossl import recipes_dir
from videossl.backbones import encoder_clip
from videossl.config import load_config, read_yaml
from videossl.config_checks import check_random_encoder
from videossl.data.config import DataSourceConfig
from videossl.errors import UserError
from videossl.reference import ReferenceConfig
from videossl.transforms.video import VIDEO_MEAN, VIDEO_STD

from .multi_view import validate_multi_view

# clip geometry when neither the encoder (``encoder.pt``'s ``clip``), the eval recipe nor the command line sets it
DEFAULT_CLIP = {"num_frames": 8, "frame_stride": 2, "crop_size": 112}
EVAL_RECIPES_DIR = recipes_dir() / "eval"

SPLIT_CHOICES = ("1", "2", "3", "all")


@dataclass
class EvalDataConfig(DataSourceConfig):
    """Where the labeled videos are and how clips are cut from them: the data layer's ``DataSourceConfig``
    (``videossl.data.build`` reads both), with the fields whose protocol differs from pretraining redeclared.

    ``format=synthetic`` evaluates on the cached synthetic dataset (``root`` empty: the default cache, sizes from
    ``synthetic``, the same as pretraining's ``data.synthetic``). Where evaluation differs from pretraining:

    - ``split`` is ``"1"``, ``"2"``, ``"3"`` or ``"all"`` (UCF101 / HMDB51: the three official splits; ``all`` reports
      mean and std); each protocol reads the train and the test list of that split;
    - ``num_frames``, ``frame_stride``, ``crop_size``, ``mean`` and ``std`` left unset (null) take the encoder's own
      (``encoder.pt`` records the clip it was trained with), else ``DEFAULT_CLIP`` and the video mean / std;
    - ``short_side`` 0 decodes at ``crop_size`` for the frozen protocols (fine-tuning: at the file's size);
    - ``batch_size`` (feature extraction) and ``max_missing`` are evaluation's own.
    """

    split: str = "1"  # "1" | "2" | "3" | "all": official split ids
    num_frames: Optional[int] = None  # null: the encoder's (else 8)
    frame_stride: Optional[int] = None  # null: the encoder's (else 2)
    crop_size: Optional[int] = None  # null: the encoder's (else 112)
    mean: Optional[list[float]] = None  # normalisation; null: the encoder's (else VIDEO_MEAN)
    std: Optional[list[float]] = None  # null: the encoder's (else VIDEO_STD)
    batch_size: int = 16  # videos per batch during feature extraction
    # fraction of a split's listed videos that may be missing on disk (Kinetics downloads lose videos to removed
    # YouTube links); the missing ones are left out, counted in the results and listed in bad_files.csv. 0: refuse.
    # Unreadable videos are never replaced by others: they are left out, counted and listed the same way.
    max_missing: float = 0.0
    # the reader's split the protocols test on: "test", or "validation" where the test list has no labels
    # (Something-Something v2; its papers report the validation set)
    test_split: str = "test"
    # data.format=synthetic_factors: the label the protocols classify, "appearance" | "motion" | "arrow"
    # (videossl/data/synthetic_factors.py); unused by other formats
    factor: str = ""


@dataclass
class TestViewsConfig:
    """Multi-view test (Feichtenhofer et al., SlowFast, ICCV 2019): N uniformly spaced clips x 3 spatial
    crops per video, softmax scores averaged per video."""

    num_clips: int = 10
    num_crops: int = 3
    # SVT's multi-view inference (Ranasinghe et al. 2022), see videossl/eval/multi_view.py: "FRAMESxSTRIDExCROP"
    # geometries whose features are combined per video; empty: data.num_frames x data.frame_stride x data.crop_size.
    multi_view: list[str] = field(default_factory=list)
    multi_view_combine: str = "concat"  # "concat" | "mean" (frozen protocols; fine-tuning averages scores)


@dataclass
class LinearConfig:
    """Linear classifier on frozen, standardised features.

    The features are standardised with the training set's per-dimension mean/std, the fixed-statistics
    equivalent of the affine-free BatchNorm in front of the classifier in MAE (He et al. 2022) and
    solo-learn's linear eval. SGD + cosine, lr 0.1 (scaled by batch/256), no weight decay follow
    MoCo v3 / MAE linear probing; ``optimizer: adamw`` is offered for small data.
    """

    epochs: int = 100
    batch_size: int = 256
    optimizer: str = "sgd"  # "sgd" | "adamw"
    lr: float = 0.1  # base lr for batch 256 (linear scaling rule, Goyal et al. 2017)
    weight_decay: float = 0.0
    train_clips: int = 3  # clips per training video, uniformly spaced, center crop, no augmentation
    # "logistic": the SGD / AdamW probe above. "svm": sklearn LinearSVC (squared hinge, one-vs-rest, C = svm_c) on
    # the same standardised features, test decision values averaged over views (BraVe's protocol:
    # google-deepmind/brave brave/evaluate/evaluate.py linear_svm_classifier); epochs / lr / optimizer unused
    classifier: str = "logistic"
    svm_c: float = 1.0  # sklearn's default C; BraVe's README evaluates with 0.0001
    # low-shot probe: as FinetuneConfig.label_fraction (video linear probe only: kNN, retrieval and the audio probe
    # keep every training video)
    label_fraction: float = 1.0
    label_seed: Optional[int] = None
    tsne: bool = True
    tsne_max_points: int = 2000


@dataclass
class KnnConfig:
    """Weighted kNN (Wu et al., CVPR 2018; DINO, Caron et al. 2021): cosine similarity, k=20,
    votes weighted by exp(sim / T) with T=0.07."""

    k: int = 20
    temperature: float = 0.07


@dataclass
class FinetuneConfig:
    """Fine-tune the whole network with a linear classifier.

    SGD (momentum 0.9) with linear warmup then cosine decay (Goyal et al. 2017; Loshchilov & Hutter 2017),
    dropout 0.5 before the classifier as in SlowFast's heads (Feichtenhofer et al. 2019). The lr and epoch
    defaults are ours for small datasets (UCF101/HMDB51-sized); recipes set their own.
    ``strength`` scales the random-resized-crop range: scale = (1 - 0.92 * strength, 1), so 1.0 gives the
    (0.08, 1) of Inception-style training and 0.0 only flips.
    """

    epochs: int = 30
    batch_size: int = 16
    optimizer: str = "sgd"  # "sgd" | "adamw" | "adam" (coupled L2, torch Adam: DPC / MemDPC's eval/test.py)
    lr: float = 0.05  # base lr for batch 256 (linear scaling rule, Goyal et al. 2017); our default
    weight_decay: float = 1e-4
    momentum: float = 0.9
    warmup_epochs: int = 2
    dropout: float = 0.5
    strength: float = 0.5  # augmentation strength in [0, 1]
    backbone_lr_scale: float = 1.0  # lr multiplier of the pretrained backbone relative to the classifier
    # after the warmup: cosine to 0 (default) | constant (VCOP's ft_classify.py) | step: x lr_gamma at each epoch
    # in lr_milestones (PRP's ft_classfy.py: StepLR(step_size=100, gamma=0.1))
    lr_schedule: str = "cosine"
    lr_milestones: list[int] = field(default_factory=list)
    lr_gamma: float = 0.1
    # ViT fine-tuning regularisers of BEiT / VideoMAE (MCG-NJU/VideoMAE run_class_finetuning.py), all off by default;
    # see videossl/eval/vit_finetune.py
    layer_decay: float = 1.0  # < 1: block i of L trains at lr x layer_decay ** (L - i), embeddings ** (L + 1); 1: off
    drop_path: float = 0.0  # stochastic depth, linear 0 -> drop_path over the blocks (backbones with drop_path modules)
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0  # Beta(a, a) mixup of each clip with the batch reversed; 0: off
    cutmix_alpha: float = 0.0  # CutMix box, the same pixels on every frame; 0: off
    mixup_switch_prob: float = 0.5  # both on: CutMix instead of mixup with this probability per batch (timm)
    decay_bias_and_norm: bool = False  # True: weight decay on biases and norm layers too (DPC / MemDPC's Adam)
    # SlowFast's fine-tuning (facebookresearch/SlowFast configs/contrastive_ssl/finetune_ucf_Slow_R50_syn*.yaml), off
    # by default: Nesterov SGD (SOLVER.NESTEROV, true by default there); short side uniform in jitter_scales then a
    # random crop_size square (TRAIN_JITTER_SCALES [256, 320]) instead of the random resized crop of `strength`;
    # colour jitter on every training clip (SSL_COLOR_JITTER without SSL_MOCOV2_AUG: [brightness, contrast,
    # saturation, hue] = 0.4, 0.4, 0.4, 0.1 with p = 1) and grayscale (COLOR_RND_GRAYSCALE 0.2); test views cut at
    # test_crop_size (TEST_CROP_SIZE 256; 0: data.crop_size)
    nesterov: bool = False
    jitter_scales: list[int] = field(default_factory=list)  # [min, max] short side; []: random resized crop
    color_jitter: list[float] = field(default_factory=list)  # []: no colour change
    gray_p: float = 0.0
    test_crop_size: int = 0
    # False: no horizontal flip in training (Something-Something v2: "left to right" templates change meaning;
    # MCG-NJU/VideoMAE ssv2.py: random_horizontal_flip=False for SSV2)
    hflip: bool = True
    # "clip": data.num_frames frames every data.frame_stride at a random time; "segments": TSN sampling (Wang et al.
    # 2016), the video cut into data.num_frames equal segments, one random frame from each (test: test.num_clips
    # offsets inside the segments x test.num_crops crops; VideoMAE's SSv2 protocol, ssv2.py loadvideo_decord)
    sampling: str = "clip"
    # low-shot fine-tuning: this fraction of each class's labelled training videos (at least 1 per class), drawn
    # with label_seed (null: the run's seed); the list is written to <out_dir>/label_subset*.txt. 1.0: all
    label_fraction: float = 1.0
    label_seed: Optional[int] = None


@dataclass
class AttentiveConfig:
    """Attentive probe on frozen patch tokens (V-JEPA, Bardes et al. 2024): a learned query cross-attends to the
    tokens of the clips of a video (``videossl.nn.attentive_pooler.AttentiveClassifier``), then a linear classifier.

    Defaults from facebookresearch/jepa ``configs/evals/vitl16_k400_16x8x3.yaml`` and
    ``evals/video_classification_frozen/eval.py``: AdamW on the probe only (no weight decay on biases and 1-D
    parameters), lr 0.001 (start_lr 0.001, no warm-up, cosine to final_lr 0), weight decay 0.01 cosine-decayed to
    1e-6 (``init_opt``'s final_wd default), gradient norm clipped at 1.0, 20 epochs, one cross-attention block
    (depth 1) with the encoder's head count, the tokens of all ``test.num_clips`` clips of a video attended together
    (``attend_across_segments: true``) and softmax averaged over the ``test.num_crops`` spatial views.
    """

    epochs: int = 20  # num_epochs: 20
    batch_size: int = 16  # ours for one device (reference: 4 per GPU x 64 GPUs = 256); lr follows batch / 256
    lr: float = 0.001  # lr for batch 256 (the reference's global batch), scaled by batch / 256
    start_lr: float = 0.001  # warm-up start (start_lr: 0.001)
    final_lr: float = 0.0  # final_lr: 0.0
    warmup_epochs: float = 0.0  # warmup: 0.
    weight_decay: float = 0.01  # weight_decay: 0.01
    final_weight_decay: float = 1e-6  # init_opt(final_wd=1e-6): CosineWDSchedule from weight_decay to this
    grad_clip: float = 1.0  # clip_grad_norm_(classifier.parameters(), 1.0)
    num_heads: int = 0  # 0: the encoder's attention heads (encoder.num_heads), else D // 64 (3D CNN feature maps)
    mlp_ratio: float = 4.0  # AttentivePooler mlp_ratio=4.0
    # training augmentation (utils.make_transforms in make_dataloader): random resized crop scale (0.08, 1), aspect
    # (0.75, 4/3), no horizontal flip; strength 1.0 gives scale (0.08, 1) as in FinetuneConfig.strength
    strength: float = 1.0
    hflip: bool = False  # random_horizontal_flip=False
    # the tokens of the test.num_clips clips of a video are concatenated before the pooler, in training too
    # (attend_across_segments: true); false: every clip scored alone and the scores averaged
    attend_across_clips: bool = True
    # ours, off by default: train on the tokens of fixed views (test.num_clips evenly spaced clips, centre crop, no
    # augmentation) extracted once, instead of new augmented clips through the encoder every epoch (small data,
    # benchmarks)
    cache_tokens: bool = False
    label_fraction: float = 1.0  # as FinetuneConfig.label_fraction
    label_seed: Optional[int] = None


@dataclass
class RetrievalConfig:
    """Video retrieval (Xu et al., VCOP, CVPR 2019): each test video (features averaged over its clips)
    queries the training videos; a hit at k when one of the k nearest has the query's class."""

    ks: list[int] = field(default_factory=lambda: [1, 5, 10, 20])


@dataclass
class EvalConfig:
    """Everything one evaluation run needs. ``encoder`` is an ``encoder.pt`` path or ``random:<backbone>``."""

    encoder: str = ""
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)  # the protocol's paper and code
    data: EvalDataConfig = field(default_factory=EvalDataConfig)
    test: TestViewsConfig = field(default_factory=TestViewsConfig)
    linear: LinearConfig = field(default_factory=LinearConfig)
    knn: KnnConfig = field(default_factory=KnnConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    attentive: AttentiveConfig = field(default_factory=AttentiveConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    out_dir: str = "runs/eval"
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    progress: bool = True


def validate_eval_config(cfg: Any) -> Any:
    """The checks a range table cannot make; ``load_config`` has range-checked every setting already
    (``videossl.config_checks``: split, counts, lr, optimizers, fine-tuning regularisers, device, ...)."""
    if not cfg.encoder:
        raise UserError("encoder: give a path to encoder.pt or 'random:<backbone>'")
    check_random_encoder("encoder", cfg.encoder)
    validate_multi_view(cfg.test)
    return cfg


def resolve_eval_recipe(recipe: str) -> Path:
    """An eval recipe path, or a name under ``recipes/`` (``eval/ucf101_finetune_rho``) or ``recipes/eval/``."""
    path = Path(recipe)
    if path.is_file():
        return path
    name = recipe[len("eval/"):] if recipe.startswith("eval/") else recipe
    for candidate in (EVAL_RECIPES_DIR / name, EVAL_RECIPES_DIR / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    raise UserError(f"eval recipe not found: {recipe} (neither a file nor a name in {EVAL_RECIPES_DIR})")


def fill_clip_from_encoder(cfg: Any) -> Any:
    """Unset ``data.num_frames / frame_stride / crop_size / mean / std`` take the encoder's recorded clip."""
    recorded = {} if str(cfg.encoder).startswith("random:") else encoder_clip(str(cfg.encoder))
    defaults = {**DEFAULT_CLIP, "mean": list(VIDEO_MEAN), "std": list(VIDEO_STD)}
    for key, fallback in defaults.items():
        if OmegaConf.select(cfg, f"data.{key}") is None:
            cfg.data[key] = recorded.get(key, fallback)
    return cfg


def load_eval_config(encoder: str | None = None, recipe: str | None = None,
                     overrides: list[str] | None = None) -> Any:
    """``EvalConfig`` from an optional recipe YAML and ``a.b=value`` overrides, then ``encoder`` if given.

    Uses the project's ``videossl.config.load_config`` (typed, unknown keys name the closest valid key). Clip
    geometry neither the recipe nor the overrides set comes from the encoder (``fill_clip_from_encoder``).
    """
    overrides = list(overrides or [])
    if encoder is not None:
        overrides.append(f"encoder={encoder}")
    path = resolve_eval_recipe(recipe) if recipe else None
    if path is not None:
        read_yaml(path)  # a clear error for a bad file before the schema merge
    cfg = load_config(EvalConfig, path, overrides)
    if cfg.encoder:
        fill_clip_from_encoder(cfg)
    return validate_eval_config(cfg)
