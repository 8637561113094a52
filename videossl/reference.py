"""A recipe's provenance, typed: the paper, the reference code its hyperparameters come from, and the published
numbers it targets, each with the table or README it was read from.

Every real-data recipe (pretraining or ``recipes/eval/``) carries a ``reference:`` section of this shape; the
synthetic recipes leave it empty. ``videossl list recipes`` prints it, every run writes it into its report, and
``docs/reproduce.md`` is generated from it (``python tools/reproduce_table.py``). A number nobody read in a file is
written ``value: null`` with ``source: not found``; it is never guessed.

Example::

    reference:
      paper: A Large-Scale Study on Unsupervised Spatiotemporal Representation Learning
      authors: Feichtenhofer, Fan, Xiong, Girshick, He
      year: 2021
      arxiv: "2104.14558"
      code: facebookresearch/SlowFast
      code_file: configs/contrastive_ssl/MoCo_SlowR50_8x8.yaml
      code_commit: ""
      published:
        - {metric: K400 linear top-1, value: 66.6, source: "facebookresearch/SlowFast projects/contrastive_ssl/README.md",
           setting: "rho=2, Slow-R50 8x8, 200 ep"}
      eval_recipes: [eval/k400_linear_rho, eval/ucf101_finetune_rho]
      compute: {gpus: 64, gpu: V100, epochs: 200, note: ""}
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

NOT_FOUND = "not found"


@dataclass
class PublishedNumber:
    """One number a paper or reference README reports, and where it was read."""

    metric: str = ""  # what is measured, e.g. "UCF101 fine-tune top-1 (split 1)"
    value: Optional[float] = None  # None: not found in any file read
    source: str = ""  # the file it was read in: "facebookresearch/SlowFast projects/contrastive_ssl/README.md", a table
    setting: str = ""  # the row it is: backbone, pretraining data / epochs, rho, resolution, when not the recipe's own


@dataclass
class ComputeConfig:
    """What the reference run used, as the paper or its code states it (0 / "" when not stated)."""

    gpus: int = 0  # accelerators in the reference run (global batch = per-GPU batch x gpus)
    gpu: str = ""  # e.g. "V100", "TPU v3"
    epochs: float = 0.0  # pretraining / fine-tuning epochs of the reference
    note: str = ""


@dataclass
class ReferenceConfig:
    """Provenance of a recipe. Empty (``paper == ""``) for synthetic and toy recipes."""

    paper: str = ""  # title
    authors: str = ""  # "Feichtenhofer et al."
    year: int = 0
    arxiv: str = ""  # arXiv id, e.g. "2104.14558"; "" if the paper has none
    venue: str = ""  # e.g. "CVPR 2021"
    code: str = ""  # reference implementation repository, owner/name (or "not found")
    code_file: str = ""  # the file(s) its hyperparameters come from, comma-separated
    code_commit: str = ""  # the commit read, when one was
    published: list[PublishedNumber] = field(default_factory=list)
    eval_recipes: list[str] = field(default_factory=list)  # names under recipes/, e.g. "eval/ucf101_finetune_rho"
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    notes: str = ""


REQUIRED_FIELDS = ("paper", "authors", "year", "code", "code_file")


def reference_problems(ref: Any) -> list[str]:
    """What a real-data recipe's ``reference:`` section lacks, one line per problem (empty: complete)."""
    problems = [f"reference.{key} is empty" for key in REQUIRED_FIELDS if not ref.get(key)]
    if not ref.get("published"):
        problems.append("reference.published lists no number (write value: null, source: not found if none was read)")
    for i, number in enumerate(ref.get("published") or []):
        if not number.get("metric"):
            problems.append(f"reference.published[{i}].metric is empty")
        if not number.get("source"):
            problems.append(f"reference.published[{i}].source is empty")
        elif number.get("value") is None and number.get("source") != NOT_FOUND:
            problems.append(f"reference.published[{i}]: no value, so source must be '{NOT_FOUND}'")
    return problems


def format_number(number: Any) -> str:
    """``"K400 linear top-1 [rho=2]: 66.6 (SlowFast README)"``; a missing value reads ``not found``."""
    setting = f" [{number['setting']}]" if number.get("setting") else ""
    if number.get("value") is None:
        return f"{number.get('metric', '')}{setting}: {NOT_FOUND}"
    return f"{number.get('metric', '')}{setting}: {float(number['value']):g} ({number.get('source', '')})"


def format_reference(ref: Any, indent: str = "  ") -> list[str]:
    """Lines describing ``ref`` for ``videossl list recipes`` and run reports; ``[]`` when the section is empty."""
    if not ref or not ref.get("paper"):
        return []
    lines = [f"{indent}paper: {ref.get('authors', '')} {ref.get('year', '')}, \"{ref['paper']}\""
             + (f" (arXiv {ref['arxiv']})" if ref.get("arxiv") else "")]
    if ref.get("code"):
        lines.append(f"{indent}code: {ref['code']} {ref.get('code_file', '')}"
                     + (f" @ {ref['code_commit'][:10]}" if ref.get("code_commit") else ""))
    for number in ref.get("published") or []:
        lines.append(f"{indent}published: {format_number(number)}")
    if ref.get("eval_recipes"):
        lines.append(f"{indent}evaluate with: {', '.join(ref['eval_recipes'])}")
    return lines
