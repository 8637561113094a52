"""Range checks of every numeric and enumerated setting, run when a config is built (issue 20, item 5).

A rule says whether a value is allowed and, in words, what is allowed. Tables map dotted keys to rules:
``PRETRAIN_RULES`` (data, backbone, optim, train), ``eval_rules(kind)`` (the eval configs), and ``method_rule`` for
a method's own dataclass: a generic pass by field name and type (sizes >= 1, probabilities in [0, 1], temperatures
> 0, every float finite, ...) with ``METHOD_RULES`` where the generic rule would be wrong. A bad value raises
``UserError`` with one line naming the key, the value and what is allowed::

    optim.lr must be a finite number > 0, got -1.0

Bounds that are not mathematical are "memory sense": far above any published setting (the recipes go up to
432 px crops, 64 frames, 65536-d heads and queues) and low enough that a typo (``crop_size=100000`` asks for
~240 GB for one batch) fails here instead of in the allocator. Raise them here if a real setting ever needs more.

This is a bottom layer: it imports the registries (backbones, decoders, dataset readers, method constants) only
inside the functions that need them and never the engine, eval or CLI.
"""
from __future__ import annotations

import difflib
import importlib
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from .errors import UserError

# memory sense (see the module docstring)
MAX_FRAMES = 512  # frames per clip (recipes: <= 64; VideoMAE / SVT long clips: 16-64)
MAX_STRIDE = 1024  # frames skipped between sampled frames (recipes: <= 80)
MIN_CROP, MAX_CROP = 8, 1024  # pixels (recipes: 48-432); below 8 no backbone keeps a spatial map
MAX_SHORT_SIDE = 4096  # decoder resize (4K video is 2160)
MAX_BATCH = 65536  # per process
MAX_WORKERS = 256
MAX_METHOD_SIZE = 1 << 20  # a method's dims / queues / counts (DINO's 65536-d head, NNCLR's 98304 support set)
MAX_SEED = 2**32 - 1  # numpy / Lightning's seed_everything range (larger seeds are replaced by a random one)

OPTIMIZERS = ("adamw", "adam", "sgd", "lars")  # engine/optim.py builds these (a test keeps the lists equal)
LR_SCHEDULES = ("cosine", "step", "constant")
ACCELERATORS = ("auto", "cpu", "cuda", "gpu", "mps")
# DDP variants only: fsdp / deepspeed shard the state, which the checkpoint code (full state_dicts) does not handle
STRATEGIES = ("auto", "ddp", "ddp_spawn", "ddp_fork", "ddp_find_unused_parameters_true")
PRECISIONS = ("auto", "32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true")


# ------------------------------------------------------------------------------------------------ rules


@dataclass(frozen=True)
class Num:
    """A finite number (``integer``: a whole one) in [low, high]; ``*_open`` excludes the bound; ``zero_ok``: 0 too
    (an "off" / "default" value below ``low``); ``none_ok``: null too (eval: "take the encoder's")."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    zero_ok: bool = False
    none_ok: bool = False

    def allows(self, v: Any) -> bool:
        if v is None:
            return self.none_ok
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
            return False
        if self.integer and v != int(v):
            return False
        if self.zero_ok and v == 0:
            return True
        low_ok = self.low is None or (v > self.low if self.low_open else v >= self.low)
        return low_ok and (self.high is None or (v < self.high if self.high_open else v <= self.high))

    def describe(self) -> str:
        what = "an integer" if self.integer else ("a number" if self.low is not None and self.high is not None
                                                  else "a finite number")
        if self.low is not None and self.high is not None:
            what += f" in {'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}{')' if self.high_open else ']'}"
        elif self.low is not None:
            what += f" {'>' if self.low_open else '>='} {_num(self.low)}"
        elif self.high is not None:
            what += f" {'<' if self.high_open else '<='} {_num(self.high)}"
        return ("null or " if self.none_ok else "") + ("0 or " if self.zero_ok else "") + what


@dataclass(frozen=True)
class Choice:
    """One of ``options`` (a tuple, or a function giving a registry's names, called only when checking);
    ``empty_ok``: "" too (e.g. "the default backbone"); ``what`` names a long list instead of spelling it."""

    options: tuple | Callable[[], Iterable[Any]]
    empty_ok: bool = False
    what: str = ""

    def names(self) -> list:
        return list(self.options() if callable(self.options) else self.options)

    def allows(self, v: Any) -> bool:
        return (self.empty_ok and v == "") or v in self.names()

    def describe(self) -> str:
        names = self.names()
        listed = self.what or "one of " + ", ".join(str(n) for n in names)
        return ('"" or ' if self.empty_ok else "") + listed


@dataclass(frozen=True)
class Each:
    """A list (or a mapping's values) whose every item passes ``item``; ``lengths``: the allowed list lengths."""

    item: Num | Choice
    lengths: tuple[int, ...] = ()
    none_ok: bool = False


@dataclass(frozen=True)
class Pattern:
    """A string matching a regular expression (e.g. ``cuda:1``)."""

    regex: str
    what: str

    def allows(self, v: Any) -> bool:
        return isinstance(v, str) and re.fullmatch(self.regex, v) is not None

    def describe(self) -> str:
        return self.what


Rule = Num | Choice | Each | Pattern


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


def _int(low: int, high: int | None = None, **kw: Any) -> Num:
    return Num(low, high, integer=True, **kw)


POSITIVE = Num(0, low_open=True)  # finite > 0
NON_NEGATIVE = Num(0)
UNIT = Num(0, 1)  # probabilities, fractions, momenta
SEED = _int(0, MAX_SEED)
CLIP = {"num_frames": _int(1, MAX_FRAMES), "frame_stride": _int(1, MAX_STRIDE), "crop_size": _int(MIN_CROP, MAX_CROP)}


def _registry(module: str, attr: str) -> Callable[[], list]:
    return lambda: list(getattr(importlib.import_module(module), attr))


def backbone_names() -> list[str]:
    return _registry("videossl.backbones", "BACKBONES")()


def decoder_names() -> list[str]:
    return _registry("videossl.data.decode", "DECODERS")()


def data_formats() -> list[str]:
    importlib.import_module("videossl.data")  # registers the audio-visual readers (kinetics_sounds, audioset, esc50)
    return ["synthetic", "synthetic_factors", *_registry("videossl.data.datasets", "READERS")()]


BACKBONE = Choice(backbone_names, what="a registered backbone (`videossl list backbones`)")
DECODER = Choice(decoder_names)
DATA_FORMAT = Choice(data_formats)

# ----------------------------------------------------------------------------------------------- tables


def _prefixed(prefix: str, rules: dict[str, Rule]) -> dict[str, Rule]:
    return {f"{prefix}{k}": v for k, v in rules.items()}


SYNTHETIC_RULES = {"num_pool": _int(0, 1_000_000), "num_train": _int(0, 1_000_000), "num_test": _int(0, 1_000_000),
                   "size": _int(8, MAX_CROP), "seed": SEED}  # size >= 8: data/synthetic.py's own lower bound

PRETRAIN_RULES: dict[str, Rule] = {
    "backbone.name": BACKBONE,
    "data.format": DATA_FORMAT, "data.decoder": DECODER, "data.split_id": _int(1, 3),  # UCF101 / HMDB51: 3 splits
    **_prefixed("data.", CLIP),
    "data.short_side": _int(MIN_CROP, MAX_SHORT_SIDE, zero_ok=True), "data.decode_timeout_s": NON_NEGATIVE,
    "data.num_workers": _int(0, MAX_WORKERS), "data.prefetch_factor": _int(1, 128),
    **_prefixed("data.synthetic.", SYNTHETIC_RULES),
    "optim.name": Choice(OPTIMIZERS), "optim.lr": POSITIVE, "optim.lr_scale": Each(NON_NEGATIVE),
    "optim.min_lr": NON_NEGATIVE, "optim.lr_schedule": Choice(LR_SCHEDULES), "optim.lr_milestones": Each(NON_NEGATIVE),
    "optim.lr_gamma": POSITIVE, "optim.warmup_epochs": NON_NEGATIVE, "optim.warmup_start_lr": NON_NEGATIVE,
    "optim.weight_decay": NON_NEGATIVE, "optim.weight_decay_end": Num(0, none_ok=True), "optim.momentum": UNIT,
    "optim.betas": Each(Num(0, 1, high_open=True), lengths=(2,)),  # torch Adam refuses beta >= 1
    "optim.lars_eta": POSITIVE, "optim.clip_grad": NON_NEGATIVE, "optim.accumulate": _int(1, MAX_BATCH),
    "train.epochs": _int(1), "train.max_steps": _int(0), "train.batch_size": _int(1, MAX_BATCH), "train.seed": SEED,
    "train.accelerator": Choice(ACCELERATORS), "train.devices": _int(1, 1024), "train.num_nodes": _int(1),
    "train.strategy": Choice(STRATEGIES), "train.ddp_timeout_s": POSITIVE, "train.precision": Choice(PRECISIONS),
    "train.log_every": _int(1), "train.ckpt_every": _int(0),
}

# settings whose value is a path, a name the data decides, a regex or a list of keys: no range to check
FREE_TEXT = {"data.root", "data.annotations", "data.split", "backbone.pretrained", "backbone.kwargs", "train.run_dir",
             "train.resume", "train.resume_allow_changes", "encoder", "out_dir", "audio_encoder", "head",
             "data.train_split", "test.multi_view", "data.test_split"}

EVAL_DATA_RULES = {"format": DATA_FORMAT, "decoder": DECODER, "num_workers": _int(0, MAX_WORKERS),
                   "batch_size": _int(1, MAX_BATCH), **_prefixed("synthetic.", SYNTHETIC_RULES)}
# low-shot training (eval/label_subset.py): a fraction in (0, 1] of each class, a seed or null (the run's seed)
LABEL_FRACTION_RULES = {"label_fraction": Num(0, 1, low_open=True), "label_seed": Num(0, MAX_SEED, integer=True,
                                                                                      none_ok=True)}
LINEAR_RULES = {"epochs": _int(1), "batch_size": _int(1, MAX_BATCH), "optimizer": Choice(("sgd", "adamw")),
                "lr": POSITIVE, "weight_decay": NON_NEGATIVE, "train_clips": _int(1, 1000),
                "classifier": Choice(("logistic", "svm")), "svm_c": POSITIVE, "tsne_max_points": _int(1),
                **LABEL_FRACTION_RULES}
RUN_RULES = {"seed": SEED, "device": Pattern(r"auto|cpu|mps|cuda(:\d+)?", "auto, cpu, cuda, cuda:N or mps")}


def _video_eval_rules() -> dict[str, Rule]:
    clip = {k: Num(r.low, r.high, integer=True, none_ok=True) for k, r in CLIP.items()}
    return {
        **RUN_RULES, **_prefixed("data.", {**EVAL_DATA_RULES, **clip}),
        "data.split": Choice(("1", "2", "3", "all")),
        "data.factor": Choice(("appearance", "motion", "arrow"), empty_ok=True),  # data.format=synthetic_factors
        "data.mean": Each(Num(), lengths=(1, 3), none_ok=True), "data.std": Each(POSITIVE, lengths=(1, 3), none_ok=True),
        "data.short_side": _int(MIN_CROP, MAX_SHORT_SIDE, zero_ok=True), "data.max_missing": Num(0, 1, high_open=True),
        "data.decode_timeout_s": NON_NEGATIVE,
        "test.num_clips": _int(1, 1000), "test.num_crops": Choice((1, 3)),
        "test.multi_view_combine": Choice(("concat", "mean")),
        **_prefixed("linear.", LINEAR_RULES), "knn.k": _int(1), "knn.temperature": POSITIVE,
        **_prefixed("finetune.", {
            "epochs": _int(1), "batch_size": _int(1, MAX_BATCH), "optimizer": Choice(("sgd", "adamw", "adam")),
            "lr": POSITIVE, "weight_decay": NON_NEGATIVE, "momentum": UNIT, "warmup_epochs": _int(0),
            "dropout": Num(0, 1, high_open=True), "strength": UNIT, "backbone_lr_scale": NON_NEGATIVE,
            "lr_schedule": Choice(("cosine", "constant", "step")), "lr_milestones": Each(_int(0)), "lr_gamma": POSITIVE,
            "layer_decay": Num(0, 1, low_open=True), "drop_path": Num(0, 0.99), "label_smoothing": Num(0, 0.99),
            "mixup_alpha": NON_NEGATIVE, "cutmix_alpha": NON_NEGATIVE, "mixup_switch_prob": UNIT,
            "jitter_scales": Each(_int(1, MAX_SHORT_SIDE), lengths=(0, 2)), "color_jitter": Each(NON_NEGATIVE, lengths=(0, 4)),
            "gray_p": UNIT, "test_crop_size": _int(MIN_CROP, MAX_CROP, zero_ok=True),
            "sampling": Choice(("clip", "segments")), **LABEL_FRACTION_RULES}),
        **_prefixed("attentive.", {
            "epochs": _int(1), "batch_size": _int(1, MAX_BATCH), "lr": POSITIVE, "start_lr": NON_NEGATIVE,
            "final_lr": NON_NEGATIVE, "warmup_epochs": NON_NEGATIVE, "weight_decay": NON_NEGATIVE,
            "final_weight_decay": NON_NEGATIVE, "grad_clip": NON_NEGATIVE, "num_heads": _int(0, 1024),
            "mlp_ratio": Num(0, 64, low_open=True), "strength": UNIT, **LABEL_FRACTION_RULES}),
        "retrieval.ks": Each(_int(1)),
    }


def _audio_eval_rules() -> dict[str, Rule]:
    return {**RUN_RULES, **_prefixed("data.", {
        **EVAL_DATA_RULES, "test_fold": _int(1, 5), "test_fraction": Num(0, 1, high_open=True),  # ESC-50: 5 folds
        "audio_rate": _int(1000, 384_000), "n_mels": _int(1, 512), "seconds": Num(0, 3600, low_open=True),
        "num_windows": _int(1, 1000)}), **_prefixed("linear.", LINEAR_RULES)}


def _avc_eval_rules() -> dict[str, Rule]:
    clip = {k: Num(r.low, r.high, integer=True, none_ok=True) for k, r in CLIP.items()}
    return {**RUN_RULES, "pairs_per_video": _int(1, 1000), **_prefixed("data.", {
        **EVAL_DATA_RULES, **clip, "split_id": _int(1, 3), "audio_rate": _int(1000, 384_000, none_ok=True),
        "audio_seconds": Num(0, 3600, low_open=True, none_ok=True), "n_mels": _int(1, 512, none_ok=True),
        "max_videos": _int(0), "short_side": _int(MIN_CROP, MAX_SHORT_SIDE, zero_ok=True),
        "decode_timeout_s": NON_NEGATIVE})}


def eval_rules(kind: str) -> dict[str, Rule]:
    """The table of an eval config: ``video`` (EvalConfig), ``audio`` (AudioEvalConfig) or ``avc`` (AVCEvalConfig)."""
    return {"video": _video_eval_rules, "audio": _audio_eval_rules, "avc": _avc_eval_rules}[kind]()


# the tables ``config.load_config`` applies, by the schema's dotted class name (this layer cannot import the eval
# package); tests/reliability/test_setting_ranges.py fails if a class is renamed and its checks silently vanish
SCHEMA_RULES = {"videossl.eval.config.EvalConfig": "video", "videossl.eval.audio.AudioEvalConfig": "audio",
                "videossl.eval.avc.AVCEvalConfig": "avc"}


def schema_rules(schema: type) -> dict[str, Rule]:
    kind = SCHEMA_RULES.get(f"{schema.__module__}.{schema.__qualname__}")
    return eval_rules(kind) if kind else {}


# -------------------------------------------------------------------------------- method settings


def _method_choice(module: str, attr: str) -> Choice:
    return Choice(_registry(f"videossl.methods.{module}", attr))


# explicit rules, by field name (every method) or "method.field" (one method), where the generic rule is wrong
METHOD_RULES: dict[str, Rule] = {
    # 0 means "off" or "the default"
    "num_local": _int(0, 64), "local_size": _int(0, MAX_CROP), "broad_crop_size": _int(0, MAX_CROP),
    "num_negatives": _int(0, MAX_METHOD_SIZE), "svt.window_frames": _int(0, MAX_METHOD_SIZE),
    # counts and sizes named outside the generic patterns
    "n_mels": _int(1, 512), "neighbours": _int(1, 1000), "grid": _int(1, 16), "gru_kernel": _int(1, 15),
    "key_bn_splits": _int(1, MAX_BATCH), "random_conv_max_kernel": _int(1, 255), "border_threshold": _int(0, 255),
    "audio_rate": _int(1000, 384_000), "permutation_seed": SEED,
    # floats
    "teacher_temp_warmup": UNIT, "rebalance_lambda": UNIT, "sigma": POSITIVE, "epsilon": POSITIVE,
    "init_gain": NON_NEGATIVE, "colour_strength": NON_NEGATIVE, "min_motion": NON_NEGATIVE, "gain_db": NON_NEGATIVE,
    "crop_scale": Each(Num(0, 1, low_open=True), lengths=(2,)), "color_jitter": Each(NON_NEGATIVE, lengths=(0, 4)),
    # names (the method re-checks them when it is built)
    "simclr.pairs": _method_choice("simclr", "PAIRINGS"), "cpc.score": _method_choice("cpc", "SCORES"),
    "elo.recon_target": _method_choice("elo", "RECON_TARGETS"), "elo.streams": Each(_method_choice("elo", "STREAMS")),
    "augment": Choice(("ssl", "light", "avid")), "brave.broad_input": Choice(("rgb", "frame_diff")),
}
_SIZE = re.compile(r"^num_|_(size|dim|clips|layers|depth|heads|frames|stride|candidates|iterations|permutations|"
                   r"blocks|steps|hidden|parts|rate)$")


def _generic_float(path: str) -> Rule:
    leaf = path.rsplit(".", 1)[-1]
    if "dropout" in leaf:
        return Num(0, 1, high_open=True)
    if leaf.endswith("_p") or "prob" in leaf or "momentum" in leaf or "fraction" in leaf or "ratio" in leaf:
        return UNIT
    if leaf == "temperature" or leaf.endswith("_temp"):
        return POSITIVE
    if "scale_min" in leaf or "scale_max" in leaf or "min_scale" in leaf:
        return Num(0, 1, low_open=True)
    if "seconds" in leaf:
        return Num(0, 3600, low_open=True)
    if leaf.endswith(("_s", "_std")) or "epochs" in leaf or "weight" in path or "coeff" in leaf or "lambda" in leaf:
        return NON_NEGATIVE  # durations, noise, loss weights (weights.* included)
    return Num()  # finite (e.g. audio_offset: either sign)


def method_rule(method: str, path: str, value: Any) -> Rule | None:
    """The rule of ``method.<path>`` (``path`` relative to the method section, e.g. ``weights.future``)."""
    leaf = path.rsplit(".", 1)[-1]
    explicit = METHOD_RULES.get(f"{method}.{path}") or METHOD_RULES.get(path)
    if explicit is not None:
        return explicit
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return Choice(backbone_names, empty_ok=True, what=BACKBONE.what) if leaf.endswith("_backbone") else None
    if isinstance(value, int):
        return _int(1, MAX_METHOD_SIZE) if _SIZE.search(leaf) else _int(0)
    if isinstance(value, float):
        return _generic_float(path)
    if isinstance(value, (list, ListConfig)):
        items = list(value)
        if items and all(isinstance(v, str) for v in items):
            return None  # names the method checks (e.g. elo.distill_taps: the backbone's taps)
        return Each(_int(1, MAX_METHOD_SIZE) if all(isinstance(v, int) for v in items) and items else Num())
    return None


# ------------------------------------------------------------------------------------------ checking


def _fail(key: str, rule: Num | Choice | Pattern, value: Any) -> UserError:
    shown = list(value) if isinstance(value, ListConfig) else value
    hint = ""
    if isinstance(rule, Choice) and isinstance(value, str):
        close = difflib.get_close_matches(value, [str(n) for n in rule.names()], n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
    return UserError(f"{key} must be {rule.describe()}, got {shown!r}{hint}")


def check_value(key: str, value: Any, rule: Rule) -> None:
    """Raise ``UserError`` (one line: key, value, what is allowed) unless ``value`` passes ``rule``."""
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=True)
    if not isinstance(rule, Each):
        if not rule.allows(value):
            raise _fail(key, rule, value)
        return
    if value is None and rule.none_ok:
        return
    if not isinstance(value, (list, tuple, dict)):
        raise UserError(f"{key} must be a list, got {value!r}")
    if rule.lengths and len(value) not in rule.lengths:
        counts = " or ".join(str(n) for n in rule.lengths)
        raise UserError(f"{key} must be a list of {counts} values, got {value!r}")
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for index, item in items:
        if not rule.item.allows(item):
            raise _fail(f"{key}[{index!r}]" if isinstance(value, dict) else f"{key}[{index}]", rule.item, item)


def check_settings(cfg: DictConfig, rules: dict[str, Rule]) -> None:
    """Check every key of ``rules`` present in ``cfg``."""
    for key, rule in rules.items():
        node = OmegaConf.select(cfg, key, default=_MISSING)
        if node is not _MISSING:
            check_value(key, node, rule)


_MISSING = object()


def check_method_settings(section: DictConfig) -> None:
    """The generic pass over a method's dataclass (nested sections such as ``elo``'s ``weights`` included)."""
    method = str(section.name)

    def walk(node: DictConfig, prefix: str) -> None:
        for name in node.keys():
            path, value = f"{prefix}{name}", node[name]
            if isinstance(value, DictConfig):
                walk(value, f"{path}.")
                continue
            rule = method_rule(method, path, value)
            if rule is not None:
                check_value(f"method.{path}", value, rule)

    walk(section, "")


def check_hardware(train: DictConfig) -> None:
    """``train.accelerator`` names a device this machine has (``auto`` and ``cpu`` always do)."""
    accelerator = str(train.accelerator)
    if accelerator in ("cuda", "gpu") and not torch.cuda.is_available():
        raise UserError(f"train.accelerator must be auto or cpu here (torch sees no CUDA GPU), got '{accelerator}'")
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"train.accelerator must be auto or cpu here (torch sees no MPS device), got 'mps'")


def check_pretrain_config(cfg: DictConfig, hardware: bool = True) -> DictConfig:
    """Every range of a pretraining config (``load_pretrain_config`` calls this); ``hardware``: also check that
    ``train.accelerator`` exists here (off when only reading a finished run's config)."""
    check_settings(cfg, PRETRAIN_RULES)
    if cfg.data.format in ("synthetic", "synthetic_factors") and cfg.data.split not in ("pool", "train", "test"):
        raise UserError(f"data.split must be pool, train or test with data.format={cfg.data.format}, got "
                        f"'{cfg.data.split}'")
    check_method_settings(cfg.method)
    if hardware:
        check_hardware(cfg.train)
    return cfg


def check_random_encoder(key: str, spec: str) -> None:
    """``random:<backbone>`` names a registered backbone."""
    if str(spec).startswith("random:"):
        name = str(spec)[len("random:"):]
        if name not in backbone_names():
            close = difflib.get_close_matches(name, backbone_names(), n=1)
            hint = f"; did you mean 'random:{close[0]}'?" if close else "; `videossl list backbones` lists them"
            raise UserError(f"{key} must be an encoder.pt or random:<backbone>, got {spec!r}: unknown backbone "
                            f"'{name}'{hint}")
