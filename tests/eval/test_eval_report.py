"""JSON, table and t-SNE outputs."""
import json

import torch

from videossl.eval.report import format_table, plot_tsne, result_table, write_json


def test_write_json_roundtrip(tmp_path):
    path = write_json(tmp_path / "sub" / "knn.json", {"top1": 0.5, "t": torch.tensor([1, 2])})
    assert json.loads(path.read_text()) == {"top1": 0.5, "t": [1, 2]}
    assert not (tmp_path / "sub" / "knn.json.tmp").exists()


def test_format_table_aligns_and_prints_percent():
    text = format_table([{"split": "1", "top1": 0.5234, "top5": 1.0}, {"split": "mean", "top1": None, "top5": 0.25}],
                        ["split", "top1", "top5"])
    lines = text.splitlines()
    assert lines[0].split() == ["split", "top1", "top5"]
    assert lines[2].split() == ["1", "52.3", "100.0"]
    assert lines[3].split() == ["mean", "-", "25.0"]
    assert len({len(line) for line in lines}) == 1  # every line the same width


def test_result_table_for_three_splits_has_mean_and_std_rows():
    result = {"encoder": "random:tiny_r3d", "top1": 0.6, "splits": [
        {"split": 1, "top1": 0.5}, {"split": 2, "top1": 0.6}, {"split": 3, "top1": 0.7}],
        "mean": {"top1": 0.6}, "std": {"top1": 0.1}}
    text = result_table("linear", result, ["top1"])
    assert "random:tiny_r3d" in text
    rows = [line.split() for line in text.splitlines()[3:]]
    assert rows == [["1", "50.0"], ["2", "60.0"], ["3", "70.0"], ["mean", "60.0"], ["std", "10.0"]]


def test_plot_tsne_writes_png(tmp_path):
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(40, 8, generator=gen)
    labels = torch.arange(4).repeat_interleave(10)
    path = plot_tsne(feats, labels, ["a", "b", "c", "d"], tmp_path / "tsne.png", max_points=30)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
