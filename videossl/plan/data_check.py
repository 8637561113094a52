"""The data side of a plan: videos listed by the annotations, found on disk and missing, and a decode probe of a
seeded sample of them with the recipe's decoder.

The index is the one pretraining builds (``data/build.py`` with the format's reader in ``data/datasets.py``); each
sampled file goes through ``videossl data check``'s test (``data/commands.py``: probe, then decode the first,
middle and last frame and a little audio, in a worker process killed after ``data.decode_timeout_s``), and the
readable ones are described by their header (``Decoder.probe``) and the codec of their first video stream.
"""
from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from videossl.data.build import build_index
from videossl.data.commands import check_files
from videossl.data.datasets import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS
from videossl.data.decode import create_decoder
from videossl.errors import UserError

SHOW = 5  # files named in one problem line


def _names(paths: list[str], show: int = SHOW) -> str:
    named = ", ".join(paths[:show])
    return named + (f" and {len(paths) - show} more" if len(paths) > show else "")


def _how_to_get(fmt: str) -> str:
    """`` (datasets/<format>/README.md says how to get it)`` when this checkout has that README."""
    readme = Path(__file__).resolve().parents[2] / "datasets" / fmt / "README.md"
    return f"; datasets/{fmt}/README.md says how to get it" if readme.is_file() else ""


def read_annotations(data_cfg: Any) -> dict[str, Any]:
    """``{"listed", "found", "missing": [paths], "paths": [found paths], "problems": [lines], "note"}``."""
    out: dict[str, Any] = {"format": data_cfg.format, "root": data_cfg.root, "split": data_cfg.split, "listed": None,
                           "found": None, "missing": [], "paths": [], "problems": [], "note": ""}
    if data_cfg.format == "synthetic":
        out["note"] = "procedural synthetic dataset (generated on first use, then cached)"
    elif not data_cfg.root:
        out["problems"].append(f"data.root is empty: set it to the {data_cfg.format} dataset folder"
                               f"{_how_to_get(data_cfg.format)}")
        return out
    elif not Path(data_cfg.root).expanduser().exists():
        out["problems"].append(f"data.root does not exist: {data_cfg.root} (data.format={data_cfg.format}"
                               f"{_how_to_get(data_cfg.format)})")
        return out
    try:
        index = build_index(data_cfg, data_cfg.split)
    except UserError as error:
        out["problems"].append(f"annotations: {error}")
        return out
    paths = [entry.path for entry in index.entries]
    exists: dict[str, bool] = {}
    for path in paths:
        if path not in exists:
            exists[path] = Path(path).is_file()
    out["missing"] = [p for p in paths if not exists[p]]
    out["paths"] = sorted({p for p in paths if exists[p]})
    out["listed"], out["found"] = len(paths), len(paths) - len(out["missing"])
    return out


def _codec(path: str) -> str:
    """The codec of the first video (else audio) stream, from the container header."""
    try:
        with av.open(path) as container:
            streams = container.streams.video or container.streams.audio
            return streams[0].codec_context.name if streams else "none"
    except Exception:  # noqa: BLE001 - the probe has already judged the file readable
        return "?"


def _describe(path: str, decoder: Any) -> dict[str, Any]:
    """Header facts of a readable file: codec, resolution, fps, duration (images: size only)."""
    suffix = Path(path).suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        with Image.open(path) as image:
            return {"codec": image.format or "image", "resolution": f"{image.size[0]}x{image.size[1]}",
                    "fps": None, "duration": None, "audio": False}
    meta = decoder.probe(path)
    return {"codec": _codec(path), "resolution": f"{meta.width}x{meta.height}", "fps": meta.fps,
            "duration": meta.duration, "audio": bool(meta.has_audio)}


def _unreadable_non_video(paths: list[str]) -> dict[str, str]:
    """Images and audio files: readable when their header opens (the video decoders' check does not apply)."""
    bad = {}
    for path in paths:
        try:
            if Path(path).suffix.lower() in IMAGE_EXTENSIONS:
                with Image.open(path) as image:
                    image.verify()
            else:
                with av.open(path) as container:
                    if not container.streams.audio:
                        raise ValueError("no audio stream")
        except Exception as error:  # noqa: BLE001 - any failure makes the file unreadable
            bad[path] = f"{path}: {str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__}"
    return bad


def _spread(values: list[float]) -> dict[str, float] | None:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)} if values else None


def probe_sample(paths: list[str], decoder_name: str, count: int, seed: int, timeout_s: float) -> dict[str, Any]:
    """Decode-check ``count`` files drawn from ``paths`` with ``numpy.random.default_rng(seed)``, and describe the
    readable ones: ``{"probed", "unreadable": {path: reason}, "codecs", "resolutions", "fps", "duration_s", ...}``."""
    rng = np.random.default_rng(seed)
    sample = sorted(rng.choice(len(paths), size=min(count, len(paths)), replace=False).tolist()) if paths else []
    chosen = [paths[i] for i in sample]
    media = tuple(AUDIO_EXTENSIONS) + tuple(IMAGE_EXTENSIONS)
    videos = [p for p in chosen if Path(p).suffix.lower() not in media]
    unreadable = check_files(videos, decoder_name, timeout=timeout_s, workers=min(2, len(videos)), progress=False) \
        if videos else {}
    unreadable.update(_unreadable_non_video([p for p in chosen if Path(p).suffix.lower() in media]))
    decoder = create_decoder(decoder_name)
    facts = []
    for path in chosen:
        if path in unreadable or Path(path).suffix.lower() in media:  # audio / images: checked above, no video facts
            continue
        try:
            facts.append(_describe(path, decoder))
        except Exception as error:  # noqa: BLE001 - passed the check but its header does not describe it
            unreadable[path] = f"{path}: {str(error).strip().splitlines()[0] if str(error).strip() else error!r}"
    return {"decoder": decoder_name, "seed": seed, "probed": len(chosen), "readable": len(chosen) - len(unreadable),
            "unreadable": {p: unreadable[p] for p in chosen if p in unreadable},
            "codecs": dict(Counter(f["codec"] for f in facts).most_common()),
            "resolutions": dict(Counter(f["resolution"] for f in facts).most_common()),
            "fps": _spread([f["fps"] for f in facts if f["fps"]]),
            "duration_s": _spread([f["duration"] for f in facts if f["duration"] is not None]),
            "with_audio": sum(1 for f in facts if f["audio"])}


def check_data(cfg: Any, probe: int, seed: int, max_missing_pct: float, max_unreadable_pct: float) -> dict[str, Any]:
    """Annotations, presence and the decode probe of ``cfg.data``, with one problem line per reason the plan is
    not runnable (no data, nothing found, too many missing or unreadable files) and warnings below the limits."""
    data = read_annotations(cfg.data)
    data["warnings"] = []
    data["probe"] = None
    problems = data["problems"]
    if data["listed"] is None:
        return data
    listed, missing = data["listed"], data["missing"]
    if listed == 0:
        problems.append(f"no videos listed: the {cfg.data.format} annotations of split {cfg.data.split!r} are empty")
        return data
    if data["found"] == 0:
        problems.append(f"no videos found: none of the {listed:,} files the annotations list exist "
                        f"(e.g. {missing[0]}); is data.root the folder the paths are relative to?")
        return data
    share = 100.0 * len(missing) / listed
    line = f"{len(missing)} of {listed} listed videos ({share:.1f}%) are missing: {_names(missing)}"
    if share > max_missing_pct:
        problems.append(f"{line} (more than --max-missing {max_missing_pct:g}%)")
    elif missing:
        data["warnings"].append(line)
    if probe > 0:
        timeout = float(cfg.data.get("decode_timeout_s", 60.0)) or 0.0
        result = probe_sample(data["paths"], cfg.data.decoder, probe, seed, timeout)
        data["probe"] = result
        bad = result["unreadable"]
        share = 100.0 * len(bad) / max(1, result["probed"])
        head = (f"{len(bad)} of {result['probed']} probed videos ({share:.0f}%) are unreadable with "
                f"data.decoder={cfg.data.decoder}")
        if bad and share > max_unreadable_pct:
            problems.append(f"{head} (more than --max-unreadable {max_unreadable_pct:g}%):")
            problems.extend(f"  unreadable: {reason}" for reason in bad.values())
        elif bad:
            data["warnings"].append(head + ": " + "; ".join(bad.values()))
    data.pop("paths")
    return data
