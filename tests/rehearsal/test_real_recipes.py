"""Every real-data recipe rehearsed on a miniature copy of its dataset's real layout (issue 21, item 2).

For each recipe whose ``data.format`` is not ``synthetic`` (``rehearse.real_data_recipes``):

- ``test_plan``: ``videossl plan`` on the layout passes, and its data check reports exactly the files the layout
  left out or broke on purpose (every listed file probed), nothing else;
- ``test_pretraining_step``: ``videossl pretrain`` runs one optimizer step with only the backbone(s) and the crop
  shrunk (``rehearse.shrink_overrides``), and leaves the encoder files its evaluation commands name;
- ``test_evaluation``: each of its evaluation recipes runs, as its header documents the command, for one epoch.

A recipe naming a file, key, eval recipe or dataset that does not exist fails here. The layouts
(``layouts.py``) are built once per session; ``test_layout`` checks them against the dataset READMEs.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from videossl.config import load_pretrain_config
from videossl.data.build import build_index

from .rehearse import (EvalCommand, dataset_of, data_root_override, datasets_needed, eval_commands, eval_overrides,
                       plan_argv, plan_json, real_data_recipes, recipe_yaml, relocate, videossl)

RECIPES = real_data_recipes()

# (recipe or "*", eval recipe) -> why the case is expected to fail; strict: it fails CI once it passes. The Kinetics
# evaluations used to be here (a split with any missing video was refused); their recipes now set data.max_missing.
KINETICS_EVALS = ("eval/k400_linear_rho", "eval/k400_finetune_videomae", "eval/k400_linear_svt")
XFAIL: dict[tuple[str, str], str] = {}
# recipe -> why its plan is expected to fail (strict). CPC's (the probe decoded WAV files as video) and L3's (the CPU
# fallback counted at batch 1, which L3's BatchNorm head refuses) were fixed.
PLAN_XFAIL: dict[str, str] = {}


def _eval_cases() -> list:
    cases = []
    for recipe in RECIPES:
        try:
            commands = eval_commands(recipe)
        except Exception as error:  # noqa: BLE001 - reported by the case, not as a collection error
            cases.append(pytest.param(recipe, error, id=f"{recipe}-broken_eval_reference"))
            continue
        if not commands:
            cases.append(pytest.param(recipe, None, id=f"{recipe}-no_eval_command"))
        for command in commands:
            reason = XFAIL.get((recipe, command.id)) or XFAIL.get(("*", command.id))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            cases.append(pytest.param(recipe, command, id=f"{recipe}-{command.id}", marks=marks))
    return cases


def test_there_are_real_data_recipes():
    assert len(RECIPES) >= 40, RECIPES


# ----------------------------------------------------------------------------------------------------------------
# plan
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("recipe", [pytest.param(r, marks=[pytest.mark.xfail(strict=True, reason=PLAN_XFAIL[r])])
                                    if r in PLAN_XFAIL else r for r in RECIPES])
def test_plan(recipe, layouts):
    pytest.importorskip("videossl.plan.command", reason="`videossl plan` (issue 21 item 1) has not landed")
    layout = layouts.get(dataset_of(str(recipe_yaml(recipe).data.root)))
    for dataset in datasets_needed(recipe):
        layouts.get(dataset)
    layouts.prepare(recipe)
    argv = plan_argv(recipe, layouts.base)
    result = videossl(argv)
    assert result.code in (0, 1) and result.stdout.startswith("{"), result.explain(argv)
    plan = plan_json(result)
    # a miniature layout holds fewer videos than one global batch of the full-size recipe: the plan says so, rightly
    problems = [line for line in plan["problems"] if "give no optimizer step at global batch" not in line]
    assert problems == [], problems
    data = plan["data"]
    cfg = load_pretrain_config(recipe_path(recipe), [data_root_override(recipe, layouts.base)], hardware=False)
    listed = [entry.path for entry in build_index(cfg.data, cfg.data.split).entries]
    assert data["listed"] == len(listed) > 0
    assert set(data["missing"]) == layout.missing & set(listed), "missing files other than the deliberate ones"
    probe = data["probe"]
    assert probe["probed"] == data["found"], "every file of a miniature layout is probed"
    assert set(probe["unreadable"]) == layout.broken & set(listed), probe["unreadable"]


def recipe_path(recipe: str) -> Path:
    from .rehearse import RECIPES as folder

    return folder / f"{recipe}.yaml"


# ----------------------------------------------------------------------------------------------------------------
# pretraining
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("recipe", RECIPES)
def test_pretraining_step(recipe, layouts, runs):
    for dataset in datasets_needed(recipe):
        layouts.get(dataset)
    layouts.prepare(recipe)
    run_dir = runs.get(recipe)
    with open(run_dir / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["step"]) for row in rows] == [1]
    assert math.isfinite(float(rows[0]["loss"]))
    assert (run_dir / "encoder.pt").is_file() and (run_dir / "config.yaml").is_file()
    bad = run_dir / "bad_files.csv"
    if bad.is_file():  # only the files the layout left out or broke on purpose are skipped (and, by audio methods,
        layout = layouts.get(dataset_of(str(recipe_yaml(recipe).data.root)))  # videos without an audio track)
        with open(bad) as handle:
            skipped = {row["path"]: row["reason"] for row in csv.DictReader(handle)}
        unexpected = {path: reason for path, reason in skipped.items() if path not in layout.missing | layout.broken
                      and not (path in layout.silent and reason == "no audio stream")}
        assert not unexpected, unexpected


# ----------------------------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("recipe, command", _eval_cases())
def test_evaluation(recipe, command, layouts, runs, tmp_path):
    if isinstance(command, Exception):
        pytest.fail(f"{recipe}: {command}")
    if command is None:
        pytest.fail(f"{recipe}: no evaluation recipe in reference.eval_recipes and no `videossl eval` command in its "
                    f"header")
    assert isinstance(command, EvalCommand)
    for dataset in datasets_needed(recipe):
        layouts.get(dataset)
    evaluate(recipe, command, runs, tmp_path, layouts.base)


@pytest.mark.parametrize("name", KINETICS_EVALS)
def test_kinetics_evaluation_on_a_complete_copy(name, layouts, runs, tmp_path):
    """The Kinetics evaluation recipes themselves, on the layout without its missing videos,
    with the run of the first recipe that names them."""
    recipe, command = next((r, c) for r in RECIPES for c in eval_commands(r) if c.recipe == name)
    complete = layouts.get("kinetics400_complete")
    for dataset in datasets_needed(recipe):
        layouts.get(dataset)
    evaluate(recipe, command, runs, tmp_path, layouts.base,
             lambda arg: arg.replace(f"{layouts.base}/kinetics400", str(complete.root)))


def evaluate(recipe: str, command: EvalCommand, runs, out_dir: Path, base: Path, edit=lambda arg: arg) -> None:
    """``videossl eval`` as ``command`` documents it, on the recipe's run and the layouts under ``base``."""
    run_dir = runs.get(recipe)
    encoder = run_dir / command.encoder_file
    assert encoder.is_file(), (f"{Path(command.source).name} evaluates runs/<run>/{command.encoder_file}, which a "
                               f"{recipe} run does not write (it has {sorted(p.name for p in run_dir.glob('*.pt'))})")
    argv = ["eval", command.protocol, *([command.recipe] if command.recipe else []), str(encoder),
            *(edit(relocate(arg, base)) for arg in command.args), *eval_overrides(command, out_dir)]
    result = videossl(argv)
    assert result.code == 0, result.explain(argv)
    assert any(out_dir.glob("*.json")), f"no result JSON in {out_dir}: {sorted(p.name for p in out_dir.iterdir())}"
