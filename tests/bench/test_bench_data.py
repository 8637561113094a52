"""``videossl bench data`` end to end on a few tiny synthetic videos (no timing assertions)."""
from __future__ import annotations

import argparse

from videossl.bench import data as bench_data


def test_bench_data_runs_tiny_and_writes_the_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VIDEOSSL_CACHE", str(tmp_path / "cache"))
    parser = argparse.ArgumentParser()
    bench_data.add_arguments(parser)
    doc = tmp_path / "bench.md"
    args = parser.parse_args(["--videos", "3", "--size", "32", "--video-seconds", "2", "--seconds", "0",
                              "--decoders", "pyav", "--cases", "one,svt", "--write-doc", str(doc)])
    assert bench_data.run(args) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| one") or line.startswith("| svt")]
    assert len(rows) == 2
    svt = rows[1].split("|")
    # ours decodes once per sample; pytorchvideo decodes each of the 10 SVT clips
    assert float(svt[4]) == 1.0 and float(svt[6]) == 10
    assert "full-decode frames/s" in doc.read_text() and "| pyav |" in doc.read_text()


def test_our_samples_cover_every_case(tmp_path, monkeypatch):
    from videossl.data.synthetic import make_synthetic

    root = make_synthetic(tmp_path / "s", num_pool=2, num_train=0, num_test=0, size=32, fps=16, min_seconds=2.0,
                          max_seconds=2.0, workers=1, progress=False)
    paths = sorted(str(p) for p in (root / "pool").glob("*.mp4"))
    for case in bench_data.CASES:
        result = bench_data.bench_ours(paths, case, "pyav", budget_s=0)
        assert result["samples"] == 2 and result["decodes_per_sample"] == 1.0, case
