"""Tiny labeled datasets written with PyAV: 3 classes told apart by colour, 32 px, 12 frames per video."""
from pathlib import Path

import numpy as np
import pytest

CLASSES = ("blue", "green", "red")
COLOURS = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}


def write_colour_videos(folder: Path, name: str, count: int, rng: np.random.Generator) -> list[Path]:
    """``count`` mp4s of a white square moving over noise on the class colour (random brightness)."""
    from videossl.data.synthetic import write_video

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        base = np.array(COLOURS[name], dtype=np.float32) * rng.uniform(0.6, 1.0)
        frames = np.empty((12, 32, 32, 3), dtype=np.uint8)
        for t in range(12):
            frame = base + rng.normal(0, 10, size=(32, 32, 3))
            x = (2 * t + k * 5) % 24
            frame[8:16, x:x + 8] = 255
            frames[t] = np.clip(frame, 0, 255)
        paths.append(write_video(folder / f"v_{name}_g{k:02d}_c01.mp4", frames, fps=8))
    return paths


@pytest.fixture(scope="session")
def colour_folder_dataset(tmp_path_factory) -> Path:
    """``root/{train,test}/<class>/<video>.mp4``: 4 train and 2 test videos per class."""
    root = tmp_path_factory.mktemp("colour_folder")
    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("test", 2)):
        for name in CLASSES:
            write_colour_videos(root / split / name, name, count, rng)
    return root


@pytest.fixture(scope="session")
def colour_ucf101_dataset(tmp_path_factory) -> Path:
    """UCF101 layout: ``root/<class>/<video>.mp4`` (3 per class), ``classInd.txt`` and three splits;
    split k tests on the k-th video of each class and trains on the other two."""
    root = tmp_path_factory.mktemp("colour_ucf101")
    rng = np.random.default_rng(1)
    videos = {name: write_colour_videos(root / name, name, 3, rng) for name in CLASSES}
    (root / "classInd.txt").write_text("".join(f"{i + 1} {name}\r\n" for i, name in enumerate(CLASSES)))
    for k in (1, 2, 3):
        train, test = [], []
        for i, name in enumerate(CLASSES):
            for j, path in enumerate(videos[name]):
                rel = f"{name}/{path.name}"
                (test if j == k - 1 else train).append(rel)
                if j != k - 1:
                    train[-1] += f" {i + 1}"
        (root / f"trainlist0{k}.txt").write_text("".join(line + "\r\n" for line in train))
        (root / f"testlist0{k}.txt").write_text("".join(line + "\r\n" for line in test))
    return root
