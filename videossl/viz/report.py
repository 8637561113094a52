"""``videossl report RUN_DIR``: one static HTML page of a run (no server; images embedded, opens from disk).

Sections: a summary table (steps, loss, learning rate, collapse monitor, throughput from ``metrics.csv``),
the loss / learning-rate / collapse-monitor curves (``loss.png``, ``lr.png``, ``collapse.png``; drawn from
``metrics.csv`` with the engine's ``plot_metrics`` when missing), one table per evaluation JSON
(``linear.json``, ``knn.json``, ``retrieval.json``, ``finetune.json``), the quickstart table, every other
picture found (t-SNE plots, ``show views`` / ``show attention`` / ``features`` output), and the config.

Where it looks: the run directory (recursively), every ``--eval DIR``, and, for a quickstart run
(``runs/quickstart/pretrain`` beside ``quickstart.json``), the quickstart folder's ``eval-*`` and
``supervised`` folders. Images are embedded as base64 ``data:`` URIs so the page is one portable file.
"""
from __future__ import annotations

import argparse
import base64
import html
import json
import math
from pathlib import Path
from typing import Any, Sequence

from omegaconf import OmegaConf

from ..engine.run_logger import plot_metrics, read_metrics
from ..errors import UserError
from ..files import make_dir, write_text
from ..reference import format_reference

CURVES = ("loss.png", "lr.png", "collapse.png")
PROTOCOL_FILES = ("linear.json", "knn.json", "retrieval.json", "finetune.json")
PICTURE_SUFFIXES = (".png", ".gif")
MAX_PICTURES = 40
MAX_PICTURE_BYTES = 8_000_000  # a larger picture is linked, not embedded

STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1100px;
       color: #1d2330; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #dde3ee; padding-bottom: 0.2em; }
.sub { color: #5b6476; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8em 0 1.4em; font-size: 0.92em; }
th, td { border: 1px solid #ccd3e0; padding: 0.3em 0.7em; text-align: right; }
th { background: #eef2f8; } td:first-child, th:first-child { text-align: left; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #dde3ee; }
figcaption { font-size: 0.8em; color: #5b6476; }
pre { background: #f5f7fb; padding: 1em; overflow-x: auto; font-size: 0.82em; }
"""
# Marks the page once it has loaded: how many tables and decoded images it holds (a headless browser test reads it).
SELF_CHECK = """
window.addEventListener('load', function () {
  var images = Array.prototype.filter.call(document.images, function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute('data-tables', document.querySelectorAll('table').length);
  document.body.setAttribute('data-images-loaded', images.length);
  document.body.setAttribute('data-images', document.images.length);
});
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def format_value(value: Any, percent: bool = False) -> str:
    """Table cells: accuracies (``percent``) as percentages with one decimal, other floats with 4 digits."""
    if value is None or value == "":
        return "-"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and math.isnan(value):
            return "nan"
        if percent:
            return f"{100 * float(value):.1f}"
        return f"{value:.4g}" if isinstance(value, float) else str(value)
    return str(value)


def html_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = "") -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    cap = f"<caption>{_esc(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def embed_image(path: Path, caption: str, width: int | None = None) -> str:
    """``<figure>`` with the picture as a ``data:`` URI (a link when the file is too large to embed)."""
    size = f' style="max-width:{width}px"' if width else ""
    if path.stat().st_size > MAX_PICTURE_BYTES:
        return f'<figure><a href="{_esc(path.resolve().as_uri())}">{_esc(caption)}</a></figure>'
    mime = "image/gif" if path.suffix.lower() == ".gif" else "image/png"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{_esc(caption)}" src="data:{mime};base64,{data}"{size}>'
            f"<figcaption>{_esc(caption)}</figcaption></figure>")


# ----------------------------------------------------------------------------------------------- sections


def training_summary(run_dir: Path) -> tuple[list[str], list[list[Any]]] | None:
    """One row per quantity from ``metrics.csv``: first, last, min, max (None when the run logged nothing)."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return None
    by_step: dict[int, dict[str, str]] = {}
    for row in read_metrics(path):
        by_step[int(float(row["step"]))] = row
    if not by_step:
        return None
    steps = sorted(by_step)
    keys = [k for k in by_step[steps[-1]] if k != "step"]
    rows = [["step", steps[0], steps[-1], steps[0], steps[-1], ""]]
    for key in keys:
        values = [float(by_step[s][key]) for s in steps if by_step[s].get(key) not in (None, "")]
        if values:
            rows.append([key, format_value(values[0]), format_value(values[-1]), format_value(min(values)),
                         format_value(max(values)), format_value(sum(values) / len(values))])
    return ["quantity", "first", "last", "min", "max", "mean"], rows


def eval_tables(result: dict) -> tuple[list[str], list[list[Any]]]:
    """Rows per split (and mean / std across splits) of one protocol's JSON."""
    splits = result.get("splits") or [result]
    metrics = [k for k in (result.get("mean") or splits[0]) if k in ("top1", "top5") or k.startswith("R@")]
    rows = [[s.get("split", i + 1), s.get("num_train", ""), s.get("num_test", "")]
            + [format_value(s.get(m), percent=True) for m in metrics] for i, s in enumerate(splits)]
    if len(splits) > 1 and "mean" in result:
        rows.append(["mean", "", ""] + [format_value(result["mean"].get(m), percent=True) for m in metrics])
        rows.append(["std", "", ""] + [format_value(result["std"].get(m), percent=True) for m in metrics])
    return ["split", "train videos", "test videos"] + [f"{m} (%)" for m in metrics], rows


def find_eval_dirs(run_dir: Path, extra: Sequence[Path]) -> list[Path]:
    """The run directory, ``--eval`` folders, and a quickstart's ``eval-*`` / ``supervised`` folders."""
    dirs = [run_dir, *extra]
    parent = run_dir.resolve().parent
    if (parent / "quickstart.json").is_file():
        dirs += sorted(p for p in parent.iterdir() if p.is_dir() and (p.name.startswith("eval-") or p.name == "supervised"))
    seen, out = set(), []
    for d in dirs:
        key = d.resolve()
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def collect(dirs: Sequence[Path]) -> tuple[list[tuple[Path, dict]], list[Path]]:
    """Protocol JSON files (with their parsed content) and pictures under ``dirs``."""
    results, pictures = [], []
    for d in dirs:
        for path in sorted(d.rglob("*")):
            if "tensorboard" in path.parts or not path.is_file():
                continue
            if path.name in PROTOCOL_FILES:
                try:
                    data = json.loads(path.read_text())
                except (OSError, json.JSONDecodeError):
                    continue
                if isinstance(data, dict) and "protocol" in data:
                    results.append((path, data))
            elif path.suffix.lower() in PICTURE_SUFFIXES and not (path.parent == dirs[0] and path.name in CURVES):
                pictures.append(path)
    return results, pictures[:MAX_PICTURES]


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve().parent))
    except ValueError:
        return str(path)


def build_report(run_dir: str | Path, eval_dirs: Sequence[str | Path] = (), out: str | Path | None = None,
                 title: str | None = None) -> Path:
    """Write the HTML page (default ``<run_dir>/report.html``) and return its path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory not found: {run_dir}")
    extra = [Path(d) for d in eval_dirs]
    for d in extra:
        if not d.is_dir():
            raise UserError(f"--eval: folder not found: {d}")
    config_text = (run_dir / "config.yaml").read_text() if (run_dir / "config.yaml").is_file() else ""
    if (run_dir / "metrics.csv").is_file() and not all((run_dir / c).is_file() for c in CURVES[:2]):
        plot_metrics(run_dir)
    method, backbone = _config_names(config_text)
    title = title or f"{method} / {backbone}: {run_dir.name}"

    parts = [f"<h1>{_esc(title)}</h1>", f'<p class="sub">run directory {_esc(run_dir.resolve())}</p>']
    summary = training_summary(run_dir)
    parts.append("<h2>Training</h2>")
    if summary is None:
        parts.append("<p>No metrics.csv in this run directory.</p>")
    else:
        parts.append(html_table(*summary, caption=f"metrics.csv ({_count_rows(run_dir)} logged steps)"))
    curves = [run_dir / c for c in CURVES if (run_dir / c).is_file()]
    captions = {"loss.png": "loss", "lr.png": "learning rate", "collapse.png": "collapse monitor (embedding std, rank)"}
    parts += [embed_image(p, captions[p.name]) for p in curves]

    results, pictures = collect(find_eval_dirs(run_dir, extra))
    quickstart = run_dir.resolve().parent / "quickstart.json"
    parts.append("<h2>Evaluation</h2>")
    if quickstart.is_file():
        rows = json.loads(quickstart.read_text()).get("rows", [])
        parts.append(html_table(["encoder", "linear top-1 (%)", "kNN top-1 (%)"],
                                [[r.get("encoder"), format_value(r.get("linear_top1"), True),
                                  format_value(r.get("knn_top1"), True)] for r in rows], caption="quickstart"))
    if not results and not quickstart.is_file():
        parts.append("<p>No evaluation results found (pass <code>--eval DIR</code> for an evaluation folder).</p>")
    for path, result in results:
        data = result.get("data", {})
        parts.append(f"<h3>{_esc(result['protocol'])} &mdash; {_esc(_relative(path, run_dir))}</h3>")
        parts.append(f'<p class="sub">encoder {_esc(result.get("encoder", "?"))}; data {_esc(data.get("format", "?"))} '
                     f'{_esc(data.get("root", ""))}, {_esc(data.get("num_frames", "?"))} frames x '
                     f'{_esc(data.get("crop_size", "?"))} px; test views {_esc(result.get("test_views", ""))}</p>')
        parts.append(html_table(*eval_tables(result)))
        if result.get("reference"):  # the eval recipe's protocol: compare with the numbers the paper reports
            lines = format_reference(result["reference"], indent="")
            parts.append("<p class=\"sub\">protocol reference</p><pre>" + _esc("\n".join(lines)) + "</pre>")
    if pictures:
        parts.append("<h2>Plots</h2>")
        parts += [embed_image(p, _relative(p, run_dir), width=1000) for p in pictures]
    reference = _reference_lines(config_text)
    if reference:
        parts.append("<h2>Reference</h2><pre>" + _esc("\n".join(reference)) + "</pre>")
    if config_text:
        parts.append(f"<h2>Config</h2><pre>{_esc(config_text)}</pre>")

    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_esc(title)}</title>"
            f"<style>{STYLE}</style><script>{SELF_CHECK}</script></head>\n<body>\n" + "\n".join(parts) + "\n</body></html>\n")
    path = Path(out) if out else run_dir / "report.html"
    make_dir(path.parent, "report folder")
    return write_text(path, page)


def _count_rows(run_dir: Path) -> int:
    return len({row["step"] for row in read_metrics(run_dir / "metrics.csv")})


def _reference_lines(config_text: str) -> list[str]:
    """The recipe's ``reference:`` section (paper, code file, published numbers) as lines; [] when it has none."""
    if not config_text:
        return []
    ref = OmegaConf.select(OmegaConf.create(config_text), "reference")
    return format_reference(OmegaConf.to_container(ref), indent="") if ref is not None else []


def _config_names(config_text: str) -> tuple[str, str]:
    if not config_text:
        return "run", "?"
    cfg = OmegaConf.create(config_text)
    return (str(OmegaConf.select(cfg, "method.name", default="run")),
            str(OmegaConf.select(cfg, "backbone.name", default="?")))


# ----------------------------------------------------------------------------------------------- command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a pretraining run directory (config.yaml, metrics.csv, ...)")
    parser.add_argument("--eval", action="append", default=[], metavar="DIR",
                        help="an evaluation output folder to include (repeatable)")
    parser.add_argument("--out", default=None, help="HTML file to write (default: RUN_DIR/report.html)")
    parser.add_argument("--title", default=None, help="page title (default: method / backbone: run name)")


def run(args: argparse.Namespace) -> int:
    print(f"wrote {build_report(args.run_dir, args.eval, args.out, args.title)}")
    return 0
