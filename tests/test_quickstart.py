"""The quickstart end to end at a tiny size: synthetic data -> pretrain -> frozen eval of SSL and random init."""
import json


def test_quickstart_tiny(tmp_path):
    from videossl.quickstart import run_quickstart

    overrides = [f"data.root={tmp_path / 'synthetic'}", "data.synthetic.num_pool=8", "data.synthetic.num_train=24",
                 "data.synthetic.num_test=12", "data.synthetic.size=32", "data.crop_size=32", "data.num_frames=2",
                 "data.num_workers=0", "train.batch_size=4", "train.max_steps=2", "train.progress=false"]
    summary = run_quickstart(overrides, out_dir=tmp_path / "qs", supervised=True, eval_overrides=[
        "test.num_clips=1", "test.num_crops=1", "linear.epochs=5", "linear.train_clips=1", "finetune.epochs=1",
        "progress=false"])
    assert [r["encoder"] for r in summary["rows"]] == ["random init", "SSL (simclr)", "supervised (upper bound)"]
    for row in summary["rows"]:
        assert 0.0 <= row["linear_top1"] <= 1.0
    table = (tmp_path / "qs" / "quickstart.md").read_text()
    assert table.count("\n") == 5 and "SSL (simclr)" in table
    assert json.loads((tmp_path / "qs" / "quickstart.json").read_text())["rows"] == summary["rows"]
    assert (tmp_path / "qs" / "pretrain" / "encoder.pt").is_file()
    assert (tmp_path / "qs" / "eval-ssl" / "linear.json").is_file()
