"""A decode that hangs is bounded: the file is skipped and reported, the good files still load (issue 11)."""
from __future__ import annotations

import threading
import time

import pytest
import torch

from videossl.data import sampling as S
from videossl.data.datasets import DatasetIndex, VideoEntry
from videossl.data.video_dataset import VideoDataset
from videossl.data.timeout import CallTimeout, TimedCaller

RELEASE = threading.Event()  # set at the end so the abandoned threads finish


class HangingDecoder:
    """A real decoder, except that any file whose name contains ``hang`` never finishes decoding."""

    def __init__(self, inner):
        self.inner = inner

    def probe(self, path):
        return self.inner.probe(path)

    def frames(self, path, indices, short_side=None):
        if "hang" in str(path):
            RELEASE.wait(60)
        return self.inner.frames(path, indices, short_side)

    def audio(self, path, start, end, rate):
        return self.inner.audio(path, start, end, rate)


def _float_clip(frames):
    return torch.as_tensor(frames).permute(3, 0, 1, 2).float() / 255


def test_timed_caller_returns_raises_and_recovers_after_a_timeout():
    caller = TimedCaller(0.3)
    assert caller(lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(KeyError, match="boom"):
        caller(lambda: {}["boom"])
    started = time.monotonic()
    with pytest.raises(CallTimeout, match="0.3 s"):
        caller(RELEASE.wait, 60)
    assert time.monotonic() - started < 10 and caller.num_timeouts == 1
    assert caller(lambda: "fresh thread") == "fresh thread"  # the stuck thread does not block the next call
    assert TimedCaller(0)(threading.get_ident) == threading.get_ident()  # 0: no limit, same thread


@pytest.mark.parametrize("workers", [0, 1])
def test_hanging_file_is_skipped_reported_and_good_files_still_load(tiny_videos, tmp_path, workers):
    from videossl.data.decode import create_decoder

    hang = tmp_path / "hang me (HMDB51 style) [1].mp4"
    hang.write_bytes(tiny_videos.av_clip.read_bytes())
    entries = [VideoEntry(str(hang), 0), VideoEntry(str(tiny_videos.av_clip), 1)]
    views = S.ViewSpec(S.RandomClipSampler(2, 1), {"clip": _float_clip})
    log = tmp_path / "bad.tsv"
    data = VideoDataset(DatasetIndex(entries, ["a", "b"]), views, decoder=HangingDecoder(create_decoder("pyav")),
                        bad_file_log=str(log), max_retries=20, decode_timeout_s=0.5)
    loader = torch.utils.data.DataLoader(data, batch_size=2, num_workers=workers, timeout=60 if workers else 0)
    started = time.monotonic()
    try:
        batch = next(iter(loader))
    finally:
        RELEASE.set()
    assert time.monotonic() - started < 30
    assert batch["index"].tolist() == [1, 1] and batch["label"].tolist() == [1, 1]  # index 0 replaced by the good file
    path, reason = log.read_text().splitlines()[0].split("\t")
    assert path == str(hang) and "did not finish within 0.5 s" in reason and "data.decode_timeout_s" in reason
    RELEASE.clear()
