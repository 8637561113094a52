"""The evaluation protocol of the synthetic tables (quickstart, ``bench learn``, the ELo search): the eval data of a
synthetic pretraining config, the test views and linear-probe settings, the supervised bound's fine-tuning and the
random-init baseline. Below the commands that share it (quickstart, bench, search), so none imports another."""
from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig

from ..backbones import create_backbone, save_encoder

EVAL_OVERRIDES = ["test.num_clips=4", "test.num_crops=3", "linear.train_clips=3", "linear.epochs=100"]
# Supervised from scratch: AdamW at the pretraining's lr (0.03 x 16 / 256 = 1.9e-3 after the linear scaling rule);
# SGD at lr 0.025 stayed at chance after 15 epochs on the motion classes.
SUPERVISED_OVERRIDES = ["finetune.epochs=30", "finetune.warmup_epochs=2", "finetune.optimizer=adamw", "finetune.lr=0.03",
                        "finetune.weight_decay=0.05", "finetune.batch_size=16", "finetune.dropout=0.0"]


def eval_data_overrides(cfg: DictConfig) -> list[str]:
    """The evaluation sees the same synthetic dataset and clip geometry as pretraining."""
    d, s = cfg.data, cfg.data.synthetic
    out = ["data.format=synthetic", f"data.num_frames={d.num_frames}", f"data.frame_stride={d.frame_stride}",
           f"data.crop_size={d.crop_size}", f"data.decoder={d.decoder}", f"data.num_workers={d.num_workers}",
           f"data.synthetic.num_pool={s.num_pool}", f"data.synthetic.num_train={s.num_train}",
           f"data.synthetic.num_test={s.num_test}", f"data.synthetic.size={s.size}", f"data.synthetic.seed={s.seed}"]
    if d.root:
        out.append(f"data.root={d.root}")
    return out


def write_random_init(cfg: DictConfig, path: Path) -> Path:
    """The same backbone (name and kwargs, e.g. residual-frame input) at random initialisation, seeded like the
    pretraining run, as an ``encoder.pt``: the baseline of the table and the start of the supervised bound."""
    kwargs = dict(cfg.backbone.kwargs)
    torch.manual_seed(cfg.train.seed)
    save_encoder(path, create_backbone(cfg.backbone.name, **kwargs), cfg.backbone.name, kwargs)
    return path
