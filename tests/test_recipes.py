"""Every recipe loads, and every real-data recipe says where its settings and target numbers come from."""
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from videossl import recipes_dir
from videossl.config import load_config, load_pretrain_config
from videossl.eval.config import EVAL_RECIPES_DIR, EvalConfig, resolve_eval_recipe
from videossl.reference import reference_problems

ROOT = Path(__file__).resolve().parent.parent
RECIPES = recipes_dir()
PRETRAIN = sorted(RECIPES.glob("*.yaml"))
EVAL = sorted(EVAL_RECIPES_DIR.glob("*.yaml"))
# recipes on data this project generates (the procedural video set, the espeak-ng speaker set): no paper to trace
GENERATED_DATA = {"cpc_speech_tiny_cpc"}


def is_real_data(path: Path) -> bool:
    data_format = OmegaConf.select(OmegaConf.load(path), "data.format", default="synthetic")
    return data_format != "synthetic" and path.stem not in GENERATED_DATA


@pytest.mark.parametrize("path", PRETRAIN, ids=lambda p: p.stem)
def test_pretraining_recipe_loads_and_real_data_has_a_complete_reference(path):
    cfg = load_pretrain_config(path)
    if is_real_data(path):
        assert reference_problems(OmegaConf.to_container(cfg.reference)) == [], path.name
        assert cfg.reference.eval_recipes, f"{path.name}: reference.eval_recipes names no evaluation recipe"


@pytest.mark.parametrize("path", EVAL, ids=lambda p: p.stem)
def test_eval_recipe_loads_and_has_a_complete_reference(path):
    cfg = load_config(eval_config_class(path), path)
    assert reference_problems(OmegaConf.to_container(cfg.reference)) == [], path.name


def eval_config_class(path: Path) -> type:
    """The config class an eval recipe is written for: audio linear probes (``esc50_*``, ``librispeech_*``) and AVC accuracy
    (``avc_*``) have their own; every other eval recipe is an ``EvalConfig``."""
    from videossl.eval.audio import AudioEvalConfig
    from videossl.eval.avc import AVCEvalConfig

    return {"esc50": AudioEvalConfig, "librispeech": AudioEvalConfig, "avc": AVCEvalConfig}.get(path.stem.split("_")[0], EvalConfig)


def test_every_eval_recipe_a_pretraining_recipe_names_exists():
    named = {(path.stem, name) for path in PRETRAIN
             for name in (OmegaConf.select(OmegaConf.load(path), "reference.eval_recipes") or [])}
    missing = [(recipe, name) for recipe, name in sorted(named) if not _exists(name)]
    assert not missing, f"eval recipes named but missing: {missing}"
    assert len(EVAL) >= 1


def _exists(name: str) -> bool:
    try:
        resolve_eval_recipe(name)
        return True
    except Exception:
        return False


def test_no_recipe_quotes_numbers_from_memory():
    words = ("from memory", "(check)", "check against", "as we recall", "check the paper")
    offenders = [(path.relative_to(RECIPES), word) for path in sorted(RECIPES.rglob("*.yaml"))
                 for word in words if word in path.read_text().lower()]
    assert not offenders, offenders


def test_reproduce_page_is_generated_from_the_current_recipes():
    """docs/reproduce.md is what tools/reproduce_table.py writes from the recipes (regenerate it when they change)."""
    from videossl.reproduce import build_reproduce_markdown

    page = build_reproduce_markdown()
    assert (ROOT / "docs" / "reproduce.md").read_text() == page
    for path in PRETRAIN:
        if is_real_data(path):
            assert f"videossl pretrain {path.stem} " in page, path.stem


def test_reproduce_page_evaluates_the_teacher_for_dino_and_svt():
    """SVT's eval_linear.py loads the checkpoint's teacher, DINO's defaults to it: their rows name encoder_teacher.pt,
    the others encoder.pt."""
    from videossl.reproduce import build_reproduce_markdown

    rows = {line.split("`")[1]: line for line in build_reproduce_markdown().splitlines()
            if line.startswith("| `videossl pretrain ")}
    svt = rows["videossl pretrain svt_k400_timesformer_b16 data.root=<dataset>"]
    simclr = rows["videossl pretrain simclr_k400_slow_r50 data.root=<dataset>"]
    assert "runs/<run>/encoder_teacher.pt" in svt and "runs/<run>/encoder.pt " not in svt
    assert "runs/<run>/encoder.pt " in simclr and "encoder_teacher" not in simclr
