"""Typed configs: YAML recipes loaded into dataclasses (OmegaConf structured configs) plus ``a.b=value``.

A recipe has five sections: ``method`` (its own dataclass, chosen by ``method.name`` from ``METHODS``),
``backbone``, ``data``, ``optim`` and ``train``. Unknown or mistyped keys, wrong types and missing files raise
``UserError`` with one line that names the key (and the closest valid key) or the path.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from .config_checks import check_pretrain_config, check_settings, schema_rules
from .data.config import DataConfig, DataSourceConfig, SyntheticConfig  # noqa: F401  (re-exported)
from .errors import UserError
from .methods import METHODS
from .methods.base import MethodConfig  # noqa: F401  (re-exported: the base of every method's section)
from .reference import ReferenceConfig


@dataclass
class BackboneConfig:
    name: str = "tiny_r3d"
    pretrained: str = ""  # local weights file or directory; never downloaded
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    name: str = "adamw"  # adamw | adam (coupled L2 weight decay, as DPC / MemDPC's torch.optim.Adam) | sgd | lars
    lr: float = 1e-3  # peak learning rate, reached after warmup
    # {regex: factor}: parameters whose name (e.g. "predictor.0.weight") matches a regex (re.search) train at
    # lr x factor, as BraVe's scale_learning_rate_by_regex; the first matching regex wins
    lr_scale: dict[str, float] = field(default_factory=dict)
    min_lr: float = 0.0  # end of the cosine
    # cosine (per iteration, to min_lr) | step (x lr_gamma at each epoch in lr_milestones, as DPC / MemDPC / the
    # pretext papers' code) | constant; warm-up applies to all three
    lr_schedule: str = "cosine"
    lr_milestones: list[float] = field(default_factory=list)  # epochs, for lr_schedule=step
    lr_gamma: float = 0.1  # factor at each milestone
    warmup_epochs: float = 0.0
    warmup_start_lr: float = 0.0
    weight_decay: float = 0.05
    weight_decay_end: float | None = None  # cosine from weight_decay to this (DINO); None keeps it constant
    momentum: float = 0.9  # sgd / lars
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # adamw
    lars_eta: float = 0.02  # LARS trust coefficient (You et al. 2017; BYOL uses 1e-3)
    nesterov: bool = False  # sgd / lars: Nesterov momentum (BraVe's LARS)
    exclude_bias_and_norm: bool = True  # no weight decay (and no LARS adaptation) on biases and norm layers
    clip_grad: float = 0.0  # max global grad norm; 0 turns clipping off
    accumulate: int = 1  # gradient accumulation steps per optimizer step


@dataclass
class TrainConfig:
    epochs: int = 10
    max_steps: int = 0  # stop after this many optimizer steps (0: run all epochs)
    batch_size: int = 32  # per process
    seed: int = 0
    accelerator: str = "auto"  # auto | cpu | cuda
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"  # auto | ddp
    ddp_timeout_s: float = 1800.0  # ddp: a collective waiting this long for a dead or hung peer fails (torch's default)
    precision: str = "auto"  # auto (bf16-mixed on GPU, 32-true on CPU) | 32-true | bf16-mixed | 16-mixed
    run_dir: str = ""  # empty: runs/<method>-<timestamp>-<random>; one live run per directory (run.lock)
    resume: str = ""  # "" | auto | path/to/last.ckpt
    # keys (e.g. [optim.lr, train.batch_size]) a resume may change from the checkpoint's config; any other
    # difference refuses the resume (docs/reliability.md)
    resume_allow_changes: list[str] = field(default_factory=list)
    log_every: int = 10
    ckpt_every: int = 0  # optimizer steps between checkpoints; 0: end of every epoch only
    progress: bool = True
    plots: bool = True
    # GPU path (issue 10; docs/benchmarks.md). Run-time only: encoder.pt and checkpoints are unchanged.
    compile: bool = False  # torch.compile the backbone's forward_features (first steps compile)
    channels_last: bool = False  # channels_last_3d weights and inputs for 3D CNNs (fast cuDNN layout under bf16)
    activation_checkpointing: bool = False  # ViTs: recompute each block in backward (less memory, ~1/3 more compute)
    # DDP on GPUs: BatchNorm statistics over the global batch (SyncBatchNorm), as SimCLR / BYOL / DINO's BN head train.
    # torch has no CPU SyncBatchNorm: under gloo each process keeps its own statistics (logged once).
    sync_batchnorm: bool = True


@dataclass
class Config:
    method: Any = None  # a MethodConfig subclass, chosen by method.name
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)  # provenance (videossl/reference.py)


def read_yaml(path: str | Path | None) -> DictConfig:
    """Load a YAML file safely (no object construction); a missing file names its path."""
    if path is None:
        return OmegaConf.create({})
    path = Path(path)
    if not path.is_file():
        raise UserError(f"recipe not found: {path}")
    try:
        loaded = OmegaConf.load(path)
    except Exception as e:  # yaml.YAMLError and OmegaConf's own
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: not valid YAML: {first}") from None
    if not isinstance(loaded, DictConfig):
        raise UserError(f"{path}: a recipe must be a mapping of sections, got a list")
    if len(loaded) == 0:
        raise UserError(f"{path}: the recipe is empty (no settings); give at least its method.name")
    return loaded


def _override_value(text: str) -> Any:
    """A command-line value: numbers, booleans, null and ``[...]`` / ``{...}`` are YAML; everything else (paths
    with `` #``, ``: ``, ``@``, spaces...) is kept verbatim as a string. ``key=``, ``key=""`` and ``key=''`` set the
    empty string (as Hydra does); ``key=null`` sets null."""
    if text.strip() in ("", '""', "''"):
        return ""
    if text.startswith(("[", "{")):
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise UserError(f"cannot parse the value {text!r}: {str(e).splitlines()[0]}") from None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if value is None and text.strip() not in ("null", "~", "None"):
        return text  # e.g. "# comment" only
    if isinstance(value, str):
        try:
            return float(text)  # YAML 1.1 reads "1e-3" as a string
        except ValueError:
            return text
    return value if isinstance(value, (bool, int, float)) or value is None else text


def parse_overrides(overrides: list[str]) -> DictConfig:
    """``["a.b=1", "c=x"]`` -> config. Each item must be ``key=value``."""
    merged = OmegaConf.create({})
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise UserError(f"override '{item}' is not of the form key=value")
        nested: Any = _override_value(text)
        for part in reversed(key.split(".")):
            nested = {part: nested}
        merged = OmegaConf.merge(merged, OmegaConf.create(nested))
    return merged


def _valid_keys(schema_node: Any, full_key: str) -> tuple[str, list[str]]:
    """Walk ``full_key``'s parents through the schema; return (parent path, valid keys there)."""
    parts = [p for p in str(full_key).split(".") if p]
    node, parent = schema_node, []
    for part in parts[:-1]:
        if isinstance(node, DictConfig) and part in node and isinstance(node[part], DictConfig):
            node = node[part]
            parent.append(part)
        else:
            break
    keys = list(node.keys()) if isinstance(node, DictConfig) else []
    return ".".join(parent), keys


def _expected_type(schema: DictConfig, full_key: str) -> str:
    """The annotated type of ``full_key`` in its dataclass, e.g. ``"int"`` or ``"list[float]"``."""
    parent_key, _, leaf = str(full_key).rpartition(".")
    parent = OmegaConf.select(schema, parent_key) if parent_key else schema
    cls = OmegaConf.get_type(parent) if isinstance(parent, DictConfig) else None
    if cls is None or not is_dataclass(cls):
        return ""
    annotations = {f.name: f.type for f in fields(cls)}
    kind = annotations.get(leaf, "")
    return kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))


def _explain(e: OmegaConfBaseException, schema: DictConfig, source: str) -> UserError:
    full_key = str(getattr(e, "full_key", "") or getattr(e, "key", "") or "")
    where = f" in {source}" if source else ""
    if isinstance(e, ConfigKeyError) or "not in" in str(e):
        parent, keys = _valid_keys(schema, full_key)
        leaf = full_key.split(".")[-1]
        close = difflib.get_close_matches(leaf, keys, n=1, cutoff=0.5)
        hint = f"; did you mean '{(parent + '.' if parent else '') + close[0]}'?" if close else (
            f"; valid keys{' under ' + parent if parent else ''}: {', '.join(keys)}")
        return UserError(f"unknown config key '{full_key}'{where}{hint}")
    if isinstance(e, ValidationError):
        msg = getattr(e, "msg", str(e)).splitlines()[0]
        expected = _expected_type(schema, full_key)
        return UserError(f"bad value for '{full_key}'{where}: {msg}" + (f" (expected {expected})" if expected else ""))
    msg = getattr(e, "msg", str(e)).splitlines()[0]
    return UserError(f"config error at '{full_key}'{where}: {msg}")


def _open_free_form_dicts(node: DictConfig) -> None:
    """``dict[str, Any]`` fields (e.g. ``backbone.kwargs``) take any key; dataclass sections stay strict."""
    for key in list(node.keys()):
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            if OmegaConf.get_type(child) is dict:
                OmegaConf.set_struct(child, False)
            else:
                _open_free_form_dicts(child)


def merge_into_schema(schema: Any, *layers: tuple[DictConfig, str]) -> DictConfig:
    """Merge ``(config, source name)`` layers onto a dataclass schema in struct mode, explaining errors."""
    base = OmegaConf.structured(schema)
    OmegaConf.set_struct(base, True)
    _open_free_form_dicts(base)
    for layer, source in layers:
        try:
            base = OmegaConf.merge(base, layer)
        except OmegaConfBaseException as e:
            raise _explain(e, base, source) from None
    return base


def load_config(schema: Any, recipe: str | Path | None = None, overrides: list[str] | None = None) -> DictConfig:
    """A typed config from a dataclass ``schema`` (class or instance), a YAML recipe and overrides; a schema with a
    table in ``config_checks.SCHEMA_RULES`` (the eval configs) is range-checked."""
    instance = schema() if isinstance(schema, type) else schema
    cfg = merge_into_schema(instance, (read_yaml(recipe), str(recipe or "")), (parse_overrides(overrides or []), "overrides"))
    check_settings(cfg, schema_rules(type(instance)))  # the eval configs' ranges (config_checks.SCHEMA_RULES)
    return cfg


def load_pretrain_config(recipe: str | Path | None, overrides: list[str] | None = None,
                         hardware: bool = True) -> DictConfig:
    """The full pretraining config: the method's dataclass is picked by ``method.name``. Every setting is
    range-checked (``config_checks``); ``hardware=False`` skips checking that ``train.accelerator`` exists here
    (for reading a finished run's config on another machine)."""
    file_cfg, cli_cfg = read_yaml(recipe), parse_overrides(overrides or [])
    name = OmegaConf.select(cli_cfg, "method.name") or OmegaConf.select(file_cfg, "method.name") or "simclr"
    if name not in METHODS:
        close = difflib.get_close_matches(str(name), list(METHODS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; choose from {', '.join(sorted(METHODS))}"
        raise UserError(f"unknown method '{name}'{hint}")
    schema = Config(method=METHODS[name].Config())
    cfg = merge_into_schema(schema, (file_cfg, str(recipe or "")), (cli_cfg, "overrides"))
    return check_pretrain_config(cfg, hardware=hardware)


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)


def dataclass_keys(obj: Any) -> list[str]:
    """Field names of a dataclass (class or instance), for help texts."""
    return [f.name for f in fields(obj)] if is_dataclass(obj) else []
