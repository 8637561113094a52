"""What ``videossl bench learn``'s video and audio columns share: the resized synthetic test split, the random-init
baseline's tag and the JSON cache of evaluations (``learn.py`` and ``learn_audio.py`` both import it, not each
other)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from videossl.errors import UserError
from videossl.files import write_text


def with_num_test(data_overrides: list[str], num_test: int | None) -> list[str]:
    """``data_overrides`` (``eval.synthetic_protocol.eval_data_overrides``) with the synthetic test split resized to
    ``num_test`` videos (None: unchanged). The pool and train videos stay the same (they are planned before the test
    split and each video is seeded by dataset seed, split and index); the test split is a new, larger draw."""
    if num_test is None:
        return list(data_overrides)
    if num_test < 1:
        raise UserError(f"--num-test: must be >= 1, got {num_test}")
    kept = [o for o in data_overrides if not o.startswith("data.synthetic.num_test=")]
    return kept + [f"data.synthetic.num_test={num_test}"]


def cached_top1(encoder: str, overrides: list[str], out_dir: Path, cache: Path,
                evaluate: Callable[[str, list[str], Path], dict]) -> dict[str, float]:
    """``evaluate`` (``learn.frozen_top1``; ``learn_audio.audio_top1`` for audio towers) through a JSON cache keyed by the
    evaluation overrides and, for a file, its content hash (a resumed finished run saves ``encoder.pt`` again with
    the same weights, so mtimes do not tell).

    The random-init baseline is evaluated once per backbone and setting (``<out>/random-<backbone>.json``); an SSL
    encoder once per training (``<out>/<recipe>/eval/bench_eval.json``), so a rerun of finished recipes is quick.
    """
    path = Path(encoder)
    stamp = hashlib.sha1(path.read_bytes()).hexdigest() if path.is_file() else None
    entries = json.loads(cache.read_text()) if cache.is_file() else []
    for entry in entries:
        if entry["overrides"] == overrides and entry.get("encoder") == stamp:
            return entry["result"]
    result = evaluate(encoder, overrides, out_dir)
    cache.parent.mkdir(parents=True, exist_ok=True)
    write_text(cache, json.dumps(entries + [{"overrides": overrides, "encoder": stamp, "result": result}], indent=2))
    return result


def backbone_tag(name: str, kwargs: dict, seed: int) -> str:
    """``<name>`` or ``<name>-<kwargs and seed hash>``: one random-init baseline per architecture and seed."""
    if not kwargs and int(seed) == 0:
        return name
    key = json.dumps({"kwargs": kwargs, "seed": int(seed)}, sort_keys=True)
    return f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"
