"""A tiny synthetic dataset shared by the method and engine tests (written once per session)."""
import pytest


@pytest.fixture(scope="session")
def tiny_pool(tmp_path_factory):
    """Folder of short 32 px synthetic videos (unlabeled pool) for two-step training runs."""
    from videossl.data.synthetic import ensure_synthetic

    root = ensure_synthetic(tmp_path_factory.mktemp("synthetic"), num_pool=8, num_train=10, num_test=10, size=32,
                            min_seconds=1.0, max_seconds=1.5, seed=0, workers=1, progress=False)
    return root / "pool"


def tiny_overrides(pool, run_dir, frames=4, steps=2, extra=()):
    return [f"data.format=folder", f"data.root={pool}", "data.split=train", f"data.num_frames={frames}",
            "data.frame_stride=1", "data.crop_size=32", "data.num_workers=0", "train.batch_size=4",
            f"train.max_steps={steps}", "train.log_every=1", "train.progress=false", f"train.run_dir={run_dir}",
            *extra]
