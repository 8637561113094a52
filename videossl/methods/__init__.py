"""Methods: one file = one whole method. ``METHODS`` is the explicit list the CLI, recipes and the smoke
test read; adding a method is one file here, one recipe and one line below."""
from __future__ import annotations

from omegaconf import DictConfig

from .arrow_of_time import ArrowOfTime
from .avenet import AVENet
from .avid import AVID
from .barlow_twins import BarlowTwins
from .base import Method, StepInfo, check_view_names
from .brave import BraVe
from .byol import BYOL
from .colorization import Colorization
from .cpc import CPC
from .cubic_puzzle import CubicPuzzle
from .dino import DINO
from .dpc import DPC
from .elo import ELo
from .inpainting import Inpainting
from .jigsaw import Jigsaw
from .l3 import L3
from .mae import MAE
from .memdpc import MemDPC
from .moco import MoCoV2, MoCoV3
from .nnclr import NNCLR
from .opn import OPN
from .playback_speed import PlaybackSpeed
from .relative_patch import RelativePatch
from .rotation import Rotation
from .shuffle_learn import ShuffleAndLearn
from .simclr import SimCLR
from .simsiam import SimSiam
from .svt import SVT
from .swav import SwAV
from .vcop import VCOP
from .vicreg import VICReg
from .vjepa import VJEPA

METHODS: dict[str, type[Method]] = {
    "simclr": SimCLR,
    "byol": BYOL,
    "moco_v2": MoCoV2,
    "moco_v3": MoCoV3,
    "simsiam": SimSiam,
    "swav": SwAV,
    "dino": DINO,
    "svt": SVT,
    "barlow_twins": BarlowTwins,
    "vicreg": VICReg,
    "nnclr": NNCLR,
    "mae": MAE,
    "dpc": DPC,
    "memdpc": MemDPC,
    "vcop": VCOP,
    "arrow_of_time": ArrowOfTime,
    "playback_speed": PlaybackSpeed,
    "opn": OPN,
    "shuffle_learn": ShuffleAndLearn,
    "rotation": Rotation,
    "jigsaw": Jigsaw,
    "cubic_puzzle": CubicPuzzle,
    "relative_patch": RelativePatch,
    "colorization": Colorization,
    "inpainting": Inpainting,
    "brave": BraVe,
    "avid": AVID,
    "l3": L3,
    "avenet": AVENet,
    "cpc": CPC,
    "elo": ELo,
    "vjepa": VJEPA,
}



def build_method(cfg: DictConfig) -> Method:
    """The method of ``cfg.method.name`` built from ``cfg``, its view names checked (``check_view_names``): a
    sampler that asks for a transform its ``views()`` does not define fails here with one line, not at the first
    batch. Every caller that trains or shows a method builds it through here."""
    method = METHODS[cfg.method.name](cfg)
    check_view_names(cfg.method.name, method.views())
    return method


__all__ = ["METHODS", "Method", "StepInfo", "build_method"]
