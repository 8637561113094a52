"""`videossl report`: the HTML page holds the run's summary, curves, evaluation tables and plots, and a real
headless browser (Debian's ``chromium`` package) renders it: tables present, every image decoded, screenshot
not blank."""
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from videossl.cli import main
from videossl.errors import UserError
from videossl.viz.report import build_report, eval_tables


def _png(path, colour):
    from PIL import Image

    Image.fromarray(np.full((40, 60, 3), colour, np.uint8)).save(path)


@pytest.fixture
def run_dir(tmp_path):
    """A quickstart-shaped folder: pretrain/ (config, metrics) beside eval-ssl/ (linear.json, tsne.png)."""
    from videossl.engine.run_logger import RunLogger, plot_metrics

    root = tmp_path / "quickstart"
    run = root / "pretrain"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("method:\n  name: simclr\nbackbone:\n  name: tiny_r3d\n")
    logger = RunLogger(run, tensorboard=False)
    for step in range(1, 6):
        logger.log(step, {"loss": 5.0 / step, "lr": 0.01 * step, "emb_std": 0.9, "emb_rank": 30.0 + step})
    plot_metrics(run)
    ev = root / "eval-ssl"
    ev.mkdir()
    split = {"split": 1, "num_train": 300, "num_test": 150, "top1": 0.8123, "top5": 0.97}
    (ev / "linear.json").write_text(json.dumps({"protocol": "linear", "encoder": "x/encoder.pt",
                                                "data": {"format": "synthetic", "num_frames": 8, "crop_size": 48},
                                                "top1": 0.8123, "top5": 0.97, "splits": [split]}))
    _png(ev / "tsne.png", (200, 30, 30))
    (root / "quickstart.json").write_text(json.dumps({"rows": [{"encoder": "SSL (simclr)", "linear_top1": 0.81,
                                                                "knn_top1": 0.7}]}))
    return run


def test_report_contains_summary_curves_tables_and_plots(run_dir, tmp_path):
    extra = tmp_path / "views"
    extra.mkdir()
    _png(extra / "views.png", (30, 200, 30))
    page = build_report(run_dir, [extra]).read_text()
    assert page.count("<table>") == 3  # training summary, quickstart, linear.json
    assert "81.2" in page and "97.0" in page  # accuracies in percent
    assert page.count("data:image/png;base64,") == 5  # loss, lr, collapse, tsne, views
    assert "emb_rank" in page and "tiny_r3d" in page
    assert "eval-ssl/tsne.png" in page


def test_three_split_results_get_mean_and_std_rows():
    result = {"splits": [{"split": i, "top1": v, "top5": 1.0} for i, v in ((1, 0.5), (2, 0.6), (3, 0.7))],
              "mean": {"top1": 0.6, "top5": 1.0}, "std": {"top1": 0.1, "top5": 0.0}}
    columns, rows = eval_tables(result)
    assert columns[-2:] == ["top1 (%)", "top5 (%)"]
    assert [r[0] for r in rows] == [1, 2, 3, "mean", "std"] and rows[3][3] == "60.0"


def test_report_command_and_errors(run_dir, tmp_path):
    assert main(["report", str(run_dir), "--out", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").stat().st_size > 1000
    with pytest.raises(UserError, match="not found"):
        build_report(tmp_path / "nope")


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(_chromium() is None, reason="needs a headless browser: apt-get install -y chromium")
def test_report_renders_in_headless_chromium(run_dir, tmp_path):
    from PIL import Image

    page = build_report(run_dir)
    flags = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--allow-file-access-from-files", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(flags + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body, "chromium returned no DOM"
    attrs = dict(re.findall(r'data-([a-z-]+)="(\d+)"', body.group(1)))
    assert attrs.get("tables") == "3"
    assert attrs.get("images") == "4" and attrs.get("images-loaded") == "4"  # every embedded picture decoded

    shot = tmp_path / "shot.png"
    subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1100,1400", page.as_uri()],
                   capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (1400, 1100)
    assert pixels.std() > 10  # text, tables and curves drawn, not a blank page


def test_report_shows_the_recipes_reference_and_the_protocols(run_dir):
    (run_dir / "config.yaml").write_text(
        "method:\n  name: moco_v2\nbackbone:\n  name: slow_r50\nreference:\n  paper: A Large-Scale Study\n"
        "  authors: Feichtenhofer et al.\n  year: 2021\n  code: facebookresearch/SlowFast\n"
        "  code_file: configs/contrastive_ssl/MoCo_SlowR50_8x8.yaml\n"
        "  published:\n  - {metric: K400 linear top-1, value: 66.6, source: SlowFast README}\n"
        "  - {metric: HMDB51 fine-tune top-1, value: null, source: not found}\n")
    linear = run_dir.parent / "eval-ssl" / "linear.json"
    result = json.loads(linear.read_text())
    result["reference"] = {"paper": "SVT", "authors": "Ranasinghe et al.", "year": 2022,
                           "published": [{"metric": "UCF101 linear top-1", "value": 90.8, "source": "SVT Table 2"}]}
    linear.write_text(json.dumps(result))
    page = build_report(run_dir).read_text()
    assert "<h2>Reference</h2>" in page and "MoCo_SlowR50_8x8.yaml" in page
    assert "K400 linear top-1: 66.6 (SlowFast README)" in page and "HMDB51 fine-tune top-1: not found<" in page.replace("\n", "<")
    assert "UCF101 linear top-1: 90.8 (SVT Table 2)" in page
