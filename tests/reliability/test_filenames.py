"""File and folder names with spaces and ``! # & ( ) ; [ ] + @ ~`` (as in HMDB51) work through the readers, every
decoder, a DataLoader, ``data check``, ``data prepare`` and a pretraining run, and never reach a shell."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from videossl.config import load_pretrain_config
from videossl.data.datasets import read_dataset
from videossl.data.decode import available_decoders, create_decoder
from videossl.engine.checkpoint import load_checkpoint
from videossl.engine.trainer import pretrain

SPECIAL = "!#&();[]+@~ "
ROOT_NAME = "data set #1 & (copy) [v2]; ~me+you@home!"
CLASSES = ("brush_hair", "cart wheel!(x) & [y]")
STEMS = ("Brushing_Her_Hair__[_NEW_AUDIO_]_UPDATED!!!!_brush_hair_h_cm_np1_fr_goo_{}",  # a real HMDB51 name
         "Chanta!____THAT_IS (long) #hair; +@~ & more_{}")


@pytest.fixture(scope="module")
def weird_root(tiny_pool, tmp_path_factory):
    """8 tiny videos in two class folders, names full of shell metacharacters, plus HMDB51-style split files."""
    root = tmp_path_factory.mktemp("names") / ROOT_NAME
    sources = sorted(Path(tiny_pool).rglob("*.mp4"))[:8]
    for i, source in enumerate(sources):
        label = i % 2
        target = root / CLASSES[label] / (STEMS[label].format(i) + ".mp4")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        split = root / "splits" / f"{CLASSES[label]}_test_split1.txt"
        split.parent.mkdir(exist_ok=True)
        with open(split, "a") as f:
            f.write(f"{target.name} {1 if i < 6 else 2}\n")
    assert all(c in str(root) + "".join(STEMS) for c in SPECIAL)
    return root


def test_readers(weird_root):
    folder = read_dataset("folder", str(weird_root))
    assert len(folder.entries) == 8 and all(Path(e.path).is_file() for e in folder.entries)
    hmdb = read_dataset("hmdb51", str(weird_root), split="train", annotations=str(weird_root / "splits"))
    assert len(hmdb.entries) == 6 and all(Path(e.path).is_file() for e in hmdb.entries)
    assert sorted(hmdb.class_names) == sorted(CLASSES)
    manifest = weird_root.parent / "manifest #1 (a&b).csv"
    manifest.write_text("path,label\n" + "".join(f"{Path(e.path).relative_to(weird_root.parent)},{e.label}\n"
                                                 for e in folder.entries))
    csv = read_dataset("csv", str(manifest))
    assert sorted(e.path for e in csv.entries) == sorted(e.path for e in folder.entries)


@pytest.mark.parametrize("backend", available_decoders())
def test_every_decoder(weird_root, backend):
    decoder = create_decoder(backend)
    for path in sorted(weird_root.rglob("*.mp4")):
        meta = decoder.probe(path)
        assert decoder.frames(path, [0, meta.num_frames - 1]).shape[0] == 2
        assert decoder.audio(path, 0.0, 0.25, 8000).shape == (1, 2000)


def cli(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "videossl.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_data_check_and_prepare(weird_root):
    checked = cli("data", "check", str(weird_root), "--workers", "1")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "checked 8 files with decord: 8 good, 0 bad" in checked.stdout
    out = weird_root.parent / "prepared; rm -rf ~ & echo $(whoami) [x]"
    prepared = cli("data", "prepare", str(weird_root), str(out), "--short-side", "16", "--fps", "8", "--workers", "1")
    assert prepared.returncode == 0, prepared.stdout + prepared.stderr
    index = read_dataset("csv", str(out / "manifest.csv"))
    assert len(index.entries) == 8 and all(Path(e.path).is_file() for e in index.entries)
    assert any("[_NEW_AUDIO_]_UPDATED!!!!" in e.path for e in index.entries)


def test_pretrain_run(weird_root, tmp_path):
    """Paths given in a recipe (YAML-quoted) reach the readers and the run directory intact."""
    import yaml

    run_dir = tmp_path / "run #2 (a&b) [c]; d+e@f ~g!"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"method": {"name": "simclr"}, "data": {"root": str(weird_root)},
                                      "train": {"run_dir": str(run_dir)}}))
    cfg = load_pretrain_config(recipe, ["data.format=folder", "data.num_frames=1", "data.crop_size=32",
                                        "data.num_workers=1", "train.batch_size=4", "train.max_steps=2",
                                        "train.progress=false", "train.plots=false"])
    assert cfg.data.root == str(weird_root) and cfg.train.run_dir == str(run_dir)
    assert pretrain(cfg) == run_dir
    assert load_checkpoint(run_dir / "last.ckpt")["step"] == 2 and (run_dir / "encoder.pt").is_file()


def test_command_line_overrides_keep_special_paths(weird_root):
    cfg = load_pretrain_config(None, ["method.name=simclr", f"data.root={weird_root}"])
    assert cfg.data.root == str(weird_root)


def test_no_shell_anywhere():
    """Every subprocess gets an argument list: no shell=True, os.system or os.popen in the package."""
    package = Path(__file__).resolve().parents[2] / "videossl"
    offenders = [f"{p}:{n}" for p in package.rglob("*.py") for n, line in enumerate(p.read_text().splitlines(), 1)
                 if re.search(r"shell\s*=\s*True|os\.system\(|os\.popen\(", line)]
    assert offenders == []
