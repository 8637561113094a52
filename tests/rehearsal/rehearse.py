"""What the rehearsal runs for one real-data recipe, through the ``videossl`` command line in this process
(``videossl.cli.main``: argument parsing and recipe lookup included, no interpreter start-up per call):

1. ``videossl plan RECIPE data.root=<layout> --json`` on the miniature layout of its dataset;
2. ``videossl pretrain RECIPE <shrink> <cpu>``: one optimizer step with only the backbone(s) and the crop made
   small (``shrink_overrides``) plus what a 2-core CPU machine needs (``cpu_overrides``: one device, fp32, batch 2,
   no loader workers, a temporary run directory); every other setting (frames, strides, views, losses, heads,
   optimizer, schedule) is the recipe's;
3. each evaluation recipe of ``reference.eval_recipes`` exactly as its own header documents the command
   (``#   videossl eval <protocol> eval/<name> runs/<run>/<encoder file> data.root=/data/...``), on the run of
   step 2, for one epoch, with the crop made small (``eval_overrides``).

Paths: a recipe's ``/data/<dir>`` stands for ``<rehearsal base>/<dir>`` (``/tmp/speech``, the espeak-ng set of
``cpc_speech_tiny_cpc``, for ``<base>/speech``); commands a recipe documents to build its data (``#   python
datasets/...``, ``#   cd /data/... && ...``) run on the layout too, as written.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from videossl import recipes_dir

ROOT = Path(__file__).resolve().parents[2]
RECIPES = recipes_dir()
EVAL_RECIPES = RECIPES / "eval"
CROP = 32  # every crop of the rehearsal (pixels); other pixel sizes keep their ratio to the recipe's crop

# the smallest backbone of the same kind (3D CNN, frame-wise 2D CNN, the same ViT family, audio CNN, CPC)
TINY = {"r3d_18": "tiny_r3d", "r2plus1d_18": "tiny_r3d", "mc3_18": "tiny_r3d", "slow_r50": "tiny_r3d",
        "r2plus1d_r50": "tiny_r3d", "r2d3d_18": "tiny_r3d", "r2d3d_34": "tiny_r3d", "resnet18": "tiny_r2d",
        "timesformer_b16": "tiny_timesformer", "videomae_vit_b16": "tiny_videomae",
        "videomae_vit_l16": "tiny_videomae", "audio_resnet18": "tiny_audio_resnet", "cpc_encoder": "tiny_cpc_encoder"}
TINY.update({tiny: tiny for tiny in set(TINY.values())})  # a recipe already on a tiny backbone keeps it
# method settings that are pixel sizes of a view (scaled with the crop)
METHOD_PIXELS = ("broad_crop_size", "local_size")
# method settings naming a weights file of the backbone: the rehearsal gives a miniature one shaped for the tiny
# backbone at the recipe's path (conftest.Layouts "weights")
METHOD_WEIGHTS = ("image_weights",)


def real_data_recipes() -> list[str]:
    """Every pretraining recipe whose ``data.format`` is not ``synthetic``."""
    return [p.stem for p in sorted(RECIPES.glob("*.yaml"))
            if OmegaConf.select(OmegaConf.load(p), "data.format", default="synthetic") != "synthetic"]


def recipe_yaml(name: str) -> Any:
    return OmegaConf.load(RECIPES / f"{name}.yaml")


def relocate(text: str, base: Path) -> str:
    """``/data/<dir>...``, ``/weights/...`` and ``/tmp/speech`` -> the rehearsal layouts under ``base``."""
    return (text.replace("/tmp/speech", str(base / "speech")).replace("/data/", f"{base}/")
            .replace("/weights/", f"{base}/weights/"))


def dataset_of(path_text: str) -> str:
    """The layout a recipe path names: ``/data/kinetics400/...`` -> ``kinetics400``."""
    if path_text.startswith("/tmp/speech"):
        return "speech"
    match = re.match(r"/data/([^/]+)", path_text)
    if not match:
        raise ValueError(f"{path_text!r} is not a /data/<dataset> path")
    return match[1]


def small(pixels: int | float, crop: int | float) -> int:
    """A pixel size of a recipe whose crop is ``crop``, rescaled to the rehearsal crop (a multiple of 8, >= 16:
    ViT patches and CNN strides stay whole)."""
    return max(16, 8 * round(float(pixels) * CROP / float(crop) / 8))


# ----------------------------------------------------------------------------------------------------------------
# overrides
# ----------------------------------------------------------------------------------------------------------------


def weights_files(name: str) -> list[str]:
    """The weights files (``/weights/...``) a recipe's method loads."""
    method = recipe_yaml(name).get("method") or {}
    return [str(method[key]) for key in METHOD_WEIGHTS if method.get(key)]


def shrink_overrides(name: str, base: Path) -> list[str]:
    """Only the backbone(s) and the crop: ``backbone.name``, every ``method.*backbone`` setting, ``data.crop_size``,
    ``data.short_side`` and the method's other view sizes in pixels; weights files of the backbone are the layout's
    miniature ones (``layouts.write_image_vit_weights``) at the recipe's path under ``base``."""
    cfg = recipe_yaml(name)
    out = []
    backbone = str(cfg.backbone.name)
    if backbone not in TINY:
        raise KeyError(f"{name}: no tiny stand-in listed for backbone {backbone!r} (add it to TINY)")
    out.append(f"backbone.name={TINY[backbone]}")
    for key, value in (cfg.get("method") or {}).items():
        if str(key).endswith("backbone") and isinstance(value, str) and value:
            out.append(f"method.{key}={TINY.get(value, value)}")
        if key in METHOD_WEIGHTS and value:
            out.append(f"method.{key}={relocate(str(value), base)}")
    data = cfg.get("data") or {}
    crop = data.get("crop_size")
    if crop:
        out.append(f"data.crop_size={CROP}")
        if data.get("short_side"):
            out.append(f"data.short_side={small(data.short_side, crop)}")
        for key in METHOD_PIXELS:
            if (cfg.get("method") or {}).get(key):
                out.append(f"method.{key}={small(cfg.method[key], crop)}")
    return out


def smallest_batch(name: str) -> int:
    """2, or the smallest batch the method accepts (CPC draws its negatives from groups of ``negative_group``)."""
    from videossl.config import load_pretrain_config

    method = load_pretrain_config(RECIPES / f"{name}.yaml", hardware=False).method
    return max(2, int(method.get("negative_group", 0) or 0))


def cpu_overrides(run_dir: Path, steps: int = 1, batch: int = 2) -> list[str]:
    """What this machine needs, not the recipe: one CPU process in fp32, a small batch, no loader workers, no
    plots, a temporary run directory."""
    return ["train.accelerator=cpu", "train.devices=1", "train.num_nodes=1", "train.strategy=auto",
            "train.precision=32-true", f"train.batch_size={batch}", f"train.max_steps={steps}", "train.log_every=1",
            "train.ckpt_every=0", "train.progress=false", "train.plots=false", f"train.run_dir={run_dir}",
            "data.num_workers=0"]


def data_root_override(name: str, base: Path) -> str:
    return f"data.root={relocate(str(recipe_yaml(name).data.root), base)}"


def datasets_needed(name: str) -> list[str]:
    """The layouts a recipe reads: its own data and its evaluation recipes' data."""
    needed = [dataset_of(str(recipe_yaml(name).data.root)), *(["weights"] if weights_files(name) else [])]
    for command in eval_commands(name):
        needed += [dataset_of(arg.split("=", 1)[1]) for arg in command.args if arg.startswith("data.root=")]
    return list(dict.fromkeys(needed))


# ----------------------------------------------------------------------------------------------------------------
# documented commands
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class EvalCommand:
    """``videossl eval <protocol> [eval recipe] runs/<run>/<encoder_file> [args...]`` as a header documents it."""

    source: str  # the recipe file the line is in
    protocol: str
    recipe: str | None  # eval/<name>, or None
    encoder_file: str  # the file of the run directory it evaluates
    args: list[str]  # key=value overrides the line gives

    @property
    def id(self) -> str:
        return self.recipe or f"{self.protocol}({Path(self.source).stem})"


def _header(path: Path) -> str:
    """The leading comment block, with ``\\``-continued command lines joined."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:])
    return re.sub(r"\\\s*\n\s*", " ", "\n".join(lines))


def documented_eval_lines(path: Path) -> list[str]:
    return [m.strip() for m in re.findall(r"^\s*(videossl eval .*)$", _header(path), flags=re.M)]


def parse_eval_line(source: Path, line: str) -> EvalCommand:
    line = re.sub(r"<[^>]*>", "RUN", line)  # runs/<l3 or avenet run>/encoder.pt
    words = shlex.split(re.sub(r"\[[^\]]*\]", " ", line))  # [optional] parts are left out
    _, _, protocol, *rest = words
    recipe = rest.pop(0) if rest and rest[0].startswith("eval/") else None
    encoder = rest.pop(0)
    if not encoder.startswith("runs/") or not encoder.endswith(".pt"):
        raise ValueError(f"{source.name}: documented command {line!r}: expected runs/<run>/<file>.pt, got {encoder!r}")
    return EvalCommand(str(source), protocol, recipe, Path(encoder).name, rest)


def eval_commands(name: str) -> list[EvalCommand]:
    """For each ``reference.eval_recipes`` entry the command its eval recipe documents (a recipe with none: the
    ``videossl eval`` lines of its own header). An eval recipe that does not exist, or documents no command or
    one for another recipe, is an error."""
    named = list(recipe_yaml(name).get("reference", {}).get("eval_recipes") or [])
    if not named:
        path = RECIPES / f"{name}.yaml"
        return [parse_eval_line(path, line) for line in documented_eval_lines(path)]
    commands = []
    for entry in named:
        path = EVAL_RECIPES / f"{entry.removeprefix('eval/')}.yaml"
        if not path.is_file():
            raise FileNotFoundError(f"{name}: reference.eval_recipes names {entry}, and {path} does not exist")
        lines = documented_eval_lines(path)
        if len(lines) != 1:
            raise ValueError(f"{path.name}: expected one documented `videossl eval` command, found {len(lines)}")
        command = parse_eval_line(path, lines[0])
        if command.recipe != entry:
            raise ValueError(f"{path.name}: its documented command runs {command.recipe}, not {entry}")
        commands.append(command)
    return commands


def eval_overrides(command: EvalCommand, out_dir: Path) -> list[str]:
    """One epoch, the rehearsal crop (other pixel sizes scaled with it), small batches, no workers, CPU."""
    common = ["data.num_workers=0", "data.batch_size=4", "device=cpu", f"out_dir={out_dir}"]
    if command.protocol == "audio-linear":
        return [*common, "linear.epochs=1"]
    if command.protocol == "avc":
        return common
    cfg = OmegaConf.load(command.source) if command.recipe else OmegaConf.create({})
    crop = OmegaConf.select(cfg, "data.crop_size", default=None) or 224
    out = [*common, f"data.crop_size={CROP}", "progress=false", "finetune.epochs=1", "finetune.batch_size=4",
           "linear.epochs=1", "attentive.epochs=1", "attentive.batch_size=4"]
    if OmegaConf.select(cfg, "data.short_side", default=0):
        out.append(f"data.short_side={small(cfg.data.short_side, crop)}")
    if OmegaConf.select(cfg, "finetune.test_crop_size", default=0):
        out.append(f"finetune.test_crop_size={small(cfg.finetune.test_crop_size, crop)}")
    scales = OmegaConf.select(cfg, "finetune.jitter_scales", default=None)
    if scales:
        out.append(f"finetune.jitter_scales=[{','.join(str(small(s, crop)) for s in scales)}]")
    views = OmegaConf.select(cfg, "test.multi_view", default=None)
    if views:
        shrunk = []
        for view in views:
            frames, stride, pixels = str(view).split("x")
            shrunk.append(f"{frames}x{stride}x{small(int(pixels), crop)}")
        out.append(f"test.multi_view=[{','.join(shrunk)}]")
    return out


def preparation_commands(name: str) -> list[str]:
    """Shell commands a recipe's header gives to build its data (``python datasets/...``, ``cd /data/... && ...``)."""
    return [m.strip() for m in re.findall(r"^\s*((?:python datasets/|cd /data/).*)$", _header(RECIPES / f"{name}.yaml"),
                                          flags=re.M)]


def run_preparation(command: str, base: Path) -> None:
    """Run a documented data-preparation command on the layouts (bash, from the repository root)."""
    line = relocate(command, base).replace("python ", f"{shlex.quote(sys.executable)} ", 1)
    done = subprocess.run(["bash", "-c", line], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"documented command failed ({done.returncode}): {line}\n{done.stdout}\n{done.stderr}")


# ----------------------------------------------------------------------------------------------------------------
# running the command line in this process
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def explain(self, argv: list[str]) -> str:
        tail = (self.stderr.strip() or self.stdout.strip())[-3000:]
        return f"`videossl {' '.join(argv)}` exited {self.code}:\n{tail}"


def videossl(argv: list[str]) -> Result:
    """``videossl ARGV`` in this process; exit code, stdout and stderr (log lines included). The ``videossl`` logger
    is left as it was found (``main`` gives it a handler on the stderr of the moment and turns propagation off)."""
    from videossl.cli import main

    logger = logging.getLogger("videossl")
    handlers, propagate, level = list(logger.handlers), logger.propagate, logger.level
    logger.handlers.clear()
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as exit_:  # argparse's own errors
                code = exit_.code if isinstance(exit_.code, int) else 2
    finally:
        logger.handlers[:] = handlers
        logger.propagate, logger.level = propagate, level
    return Result(code, out.getvalue(), err.getvalue())


def plan_argv(name: str, base: Path) -> list[str]:
    """The plan of the recipe on the layout, with the pretraining's shrunk backbone and crop (the full-size models'
    FLOP and memory simulation takes 5-10 s per recipe on 2 cores; the plan's own tests check those numbers) and
    the recipe's batch, devices and precision. Every listed file is probed, and the missing / unreadable limits are
    lifted so that the test itself compares the reported files with the deliberately missing / broken ones."""
    return ["plan", name, data_root_override(name, base), *shrink_overrides(name, base), "--json", "--probe", "64",
            "--max-missing", "100", "--max-unreadable", "100"]


def plan_json(result: Result) -> dict[str, Any]:
    return json.loads(result.stdout)
