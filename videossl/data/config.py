"""The data section of a recipe: one set of fields for training (``DataConfig``) and evaluation
(``videossl.eval.config.EvalDataConfig``).

``DataSourceConfig`` holds what both read: where the videos are (``format``, ``root``, ``annotations``, ``split``),
how they are decoded (``decoder``, ``short_side``, ``decode_timeout_s``, ``num_workers``), the clip geometry and the
synthetic set's size. ``videossl.data.build`` maps it to a ``DatasetIndex`` and a ``VideoDataset`` for both.
``DataConfig`` adds the training loader's settings; the evaluation config redeclares only the fields whose protocol
differs (its ``split`` names official split ids, its clip geometry may come from the encoder) and adds its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SyntheticConfig:
    """Size of the procedural dataset used when ``data.format=synthetic`` (see ``data/synthetic.py``)."""

    num_pool: int = 600
    num_train: int = 300
    num_test: int = 150
    size: int = 64
    seed: int = 0


@dataclass
class DataSourceConfig:
    """Where the videos are and how clips are decoded: the fields training and evaluation share."""

    format: str = "synthetic"  # synthetic | folder | csv | ucf101 | hmdb51 | kinetics | ssv2 | images | audio | librispeech
    root: str = ""  # empty with format=synthetic: the cached synthetic dataset
    annotations: str = ""  # folder with split/annotation files when they are not under root
    split: str = "train"  # synthetic: pool | train | test
    decoder: str = "decord"  # decord | pyav | torchcodec
    num_frames: int = 8  # T of a clip; 1 makes every method an image method
    frame_stride: int = 2  # frames skipped between sampled frames
    crop_size: int = 64
    short_side: int = 0  # resize in the decoder to this short side; 0 keeps the file's size
    decode_timeout_s: float = 60.0  # a probe + decode taking longer skips the file as broken (reported); 0: no limit
    num_workers: int = 2
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class DataConfig(DataSourceConfig):
    """Pretraining's ``data`` section: the shared fields plus the split id and the training loader's settings."""

    split_id: int = 1
    prefetch_factor: int = 4
    persistent_workers: bool = True
    pin_memory: bool = True  # only takes effect on GPU
    gpu_augment: bool = False  # workers crop + flip; colour/blur/solarize/normalise run batched on the device
