"""`videossl features`: one row per video in dataset order, the mean of its clips' features, CSV rows aligned
with the .npy rows, a t-SNE plot; a run directory's clip geometry is used."""
import csv

import numpy as np
import torch

from videossl.cli import main


def test_features_command_writes_aligned_npy_csv_and_plot(tiny_pool, tmp_path):
    out = tmp_path / "feats"
    code = main(["features", "random:tiny_r3d", str(tiny_pool), "data.num_frames=4", "data.frame_stride=1",
                 "data.crop_size=32", "data.num_workers=0", "progress=false", "--split", "train", "--clips", "2",
                 "--out", str(out)])
    assert code == 0
    feats = np.load(out / "features.npy")
    rows = list(csv.DictReader(open(out / "videos.csv")))
    assert feats.shape == (len(rows), 128) and len(rows) == 12
    # the label and class columns agree with the folder each video sits in
    assert all(r["class"] == r["path"].split("/")[-2] for r in rows)
    assert (out / "tsne.png").stat().st_size > 5000

    # row 0 is the mean of the encoder's features of the video's 2 clips (evaluation views, centre crop)
    from videossl.backbones import create_backbone
    from videossl.data.datasets import DatasetIndex, VideoEntry
    from videossl.data.video_dataset import VideoDataset
    from videossl.eval.views import multi_view_spec

    torch.manual_seed(0)  # random:<backbone> is seeded with cfg.seed = 0
    encoder = create_backbone("tiny_r3d").eval()
    sample = VideoDataset(DatasetIndex([VideoEntry(rows[0]["path"], 0)], []), multi_view_spec(2, 1, 4, 1, 32))[0]
    with torch.no_grad():
        expected = encoder(torch.stack(sample["video"])).mean(dim=0)
    np.testing.assert_allclose(feats[0], expected.numpy(), atol=1e-4, rtol=1e-4)


def test_features_take_the_runs_clip_geometry(tiny_pool, tmp_path):
    import json

    from videossl.backbones import create_backbone, save_encoder

    run = tmp_path / "run"
    run.mkdir()
    save_encoder(run / "encoder.pt", create_backbone("tiny_r3d"), "tiny_r3d", {})
    (run / "config.yaml").write_text("data:\n  num_frames: 2\n  frame_stride: 3\n  crop_size: 32\n")
    code = main(["features", str(run), str(tiny_pool), "data.num_workers=0", "progress=false", "--split", "train",
                 "--clips", "1", "--no-plot", "--out", str(tmp_path / "o")])
    assert code == 0
    info = json.loads((tmp_path / "o" / "features.json").read_text())
    assert (info["num_frames"], info["frame_stride"], info["crop_size"]) == (2, 3, 32)
    assert not (tmp_path / "o" / "tsne.png").exists()


def test_missing_dataset_is_a_user_error(tmp_path, capsys):
    assert main(["features", "random:tiny_r3d", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
