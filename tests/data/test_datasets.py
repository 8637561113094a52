"""Format readers on small hand-written annotation files, and VideoDataset on tiny real mp4 files."""
from __future__ import annotations

import logging
import wave

import numpy as np
import pytest
import torch

from videossl.data import sampling as S
from videossl.data.datasets import DatasetError, VideoEntry, DatasetIndex, read_dataset
from videossl.data.video_dataset import VideoDataset


def to_float_clip(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (T, H, W, C) -> float (C, T, H, W), no augmentation."""
    return torch.as_tensor(frames).permute(3, 0, 1, 2).float()


# ----------------------------------------------------------------------------------------------------
# Readers
# ----------------------------------------------------------------------------------------------------


def test_folder_labeled_and_flat(tmp_path):
    for name in ("b_class/x.mp4", "a_class/y.avi", "a_class/z.MP4", "a_class/notes.txt", "flat.mkv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    index = read_dataset("folder", str(tmp_path))
    assert index.class_names == ["a_class", "b_class"]
    labels = {e.path.rsplit("/", 1)[-1]: e.label for e in index.entries}
    assert labels == {"flat.mkv": -1, "y.avi": 0, "z.MP4": 0, "x.mp4": 1}


def test_csv_names_ints_segments_and_errors(tmp_path):
    (tmp_path / "train.csv").write_text("path,label,start,end\r\nv/a.mp4,dog,1.5,3\r\nv/b.mp4,cat,0,2\r\n")
    index = read_dataset("csv", str(tmp_path))
    assert index.class_names == ["cat", "dog"]
    assert index.entries[0] == VideoEntry(str(tmp_path / "v/a.mp4"), 1, 1.5, 3.0)
    (tmp_path / "ints.txt").write_text("a.mp4 2\nb c.mp4 0\n")  # space-separated list, space in a name
    ints = read_dataset("csv", str(tmp_path / "ints.txt"))
    assert [e.label for e in ints.entries] == [2, 0] and ints.entries[1].path.endswith("b c.mp4")
    assert ints.class_names == ["0", "1", "2"]
    (tmp_path / "bad.csv").write_text("a.mp4,1,2\n")
    with pytest.raises(DatasetError, match=r"bad.csv:1: expected path,label"):
        read_dataset("csv", str(tmp_path / "bad.csv"))


def test_ucf101_crlf_and_case_quirk(tmp_path):
    ann = tmp_path / "annotations"
    ann.mkdir()
    (ann / "classInd.txt").write_bytes(b"1 ApplyEyeMakeup\r\n2 HandstandPushups\r\n")
    (ann / "trainlist01.txt").write_bytes(b"HandstandPushups/v_HandStandPushups_g08_c01.avi 2\r\n"
                                          b"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1 \r\n")
    (ann / "testlist01.txt").write_bytes(b"handstandPushups/v_HandStandPushups_g01_c01.avi\r\n")
    train = read_dataset("ucf101", str(tmp_path), "train", 1)
    assert [e.label for e in train.entries] == [1, 0]
    assert train.entries[0].path == str(tmp_path / "HandstandPushups/v_HandStandPushups_g08_c01.avi")
    assert read_dataset("ucf101", str(tmp_path), "test", 1).entries[0].label == 1
    with pytest.raises(DatasetError, match="testlist02.txt"):
        read_dataset("ucf101", str(tmp_path), "test", 2)
    with pytest.raises(DatasetError, match="unknown split"):
        read_dataset("ucf101", str(tmp_path), "holdout", 1)


def test_hmdb51_punctuation_trailing_space_and_split_tags(tmp_path):
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "kick_ball_test_split1.txt").write_text(
        "Goal!!_#1_(Best)_kick_ball_f_cm_np1_ri_goo_0.avi 1 \nx_[a]+b~@;&.avi 2 \nunused.avi 0 \n")
    (tmp_path / "splits" / "brush_hair_test_split1.txt").write_text("hair.avi 2 \n")
    train = read_dataset("hmdb51", str(tmp_path), "train", 1)
    assert train.class_names == ["brush_hair", "kick_ball"]
    assert train.entries == [VideoEntry(str(tmp_path / "kick_ball/Goal!!_#1_(Best)_kick_ball_f_cm_np1_ri_goo_0.avi"), 1)]
    test = read_dataset("hmdb51", str(tmp_path), "test", 1)
    assert [e.path.rsplit("/", 1)[-1] for e in test.entries] == ["hair.avi", "x_[a]+b~@;&.avi"]


def test_kinetics_both_csv_flavours_and_label_folders(tmp_path):
    (tmp_path / "kinetics-400_val.csv").write_text(
        'label,youtube_id,time_start,time_end,split,is_cc\n"air drumming",abc,7,17,val,0\nabseiling,def,0,10,val,0\n')
    (tmp_path / "validate.csv").write_text("label,youtube_id,time_start,time_end,split\nabseiling,def,0,10,validate\n")
    (tmp_path / "val" / "air_drumming").mkdir(parents=True)  # label folders with underscores
    index = read_dataset("kinetics", str(tmp_path), "val", version=400)
    assert index.class_names == ["abseiling", "air drumming"]
    assert index.entries[0] == VideoEntry(str(tmp_path / "val/air_drumming/abc_000007_000017.mp4"), 1)
    assert index.entries[1].path == str(tmp_path / "val/def_000000_000010.mp4")  # no label folder: flat
    deepmind = read_dataset("kinetics", str(tmp_path), "validate")
    assert len(deepmind.entries) == 1
    untrimmed = read_dataset("kinetics", str(tmp_path), "val", version=400, trimmed=False)
    assert untrimmed.entries[0][1:] == (1, 7.0, 17.0) and untrimmed.entries[0].path.endswith("abc.mp4")


def test_ssv2_templates(tmp_path):
    (tmp_path / "something-something-v2-labels.json").write_text('{"Opening something": "1", "Closing something": "0"}')
    (tmp_path / "something-something-v2-validation.json").write_text(
        '[{"id": "7", "label": "opening a box", "template": "Opening [something]", "placeholders": ["box"]}]')
    index = read_dataset("ssv2", str(tmp_path), "validation")
    assert index.class_names == ["Closing something", "Opening something"]
    assert index.entries == [VideoEntry(str(tmp_path / "7.webm"), 1)]


def test_librispeech_speakers(tmp_path):
    for name in ("train-clean-100/19/198/19-198-0001.flac", "train-clean-100/103/1240/103-1240-0000.flac"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    index = read_dataset("librispeech", str(tmp_path), "train-clean-100")
    assert index.class_names == ["19", "103"]
    assert sorted(e.label for e in index.entries) == [0, 1]


def test_unknown_format_and_missing_root(tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset format 'nope'"):
        read_dataset("nope", str(tmp_path))
    with pytest.raises(DatasetError, match="does not exist"):
        read_dataset("folder", str(tmp_path / "absent"))


# ----------------------------------------------------------------------------------------------------
# VideoDataset on tiny real files
# ----------------------------------------------------------------------------------------------------


class CountingDecoder:
    """Wraps a real decoder and records every frames() call (the one-decode-per-sample rule)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def probe(self, path):
        return self.inner.probe(path)

    def frames(self, path, indices, short_side=None):
        self.calls.append(list(indices))
        return self.inner.frames(path, indices, short_side)

    def audio(self, path, start, end, rate):
        return self.inner.audio(path, start, end, rate)


@pytest.fixture
def pyav():
    from videossl.data.decode import create_decoder

    return create_decoder("pyav")


def test_views_carry_the_sampled_frames_in_one_decode(tiny_videos, pyav):
    index = DatasetIndex([VideoEntry(str(tiny_videos.av_clip), 3)], ["a", "b", "c", "d"])
    views = S.ViewSpec(S.RhoClipSampler(rho=3, num_frames=4, stride=3), {"clip": lambda f: f})
    decoder = CountingDecoder(pyav)
    data = VideoDataset(index, views, decoder=decoder, seed=1)
    sample = data[(0, 2)]
    assert sample["label"] == 3 and sample["index"] == 0 and len(sample["video"]) == 3
    assert len(decoder.calls) == 1 and data.decode_calls == 1
    expected = S.RhoClipSampler(rho=3, num_frames=4, stride=3)(pyav.probe(tiny_videos.av_clip),
                                                               np.random.default_rng([1, 2, 0, 0]))
    for clip, view in zip(sample["video"], expected.views):
        assert [tiny_videos.index_of(f) for f in clip] == list(view.frame_indices)
    assert decoder.calls[0] == sorted({i for v in expected.views for i in v.frame_indices})


def test_same_key_same_sample_and_epochs_differ(tiny_videos, pyav):
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    index = DatasetIndex([VideoEntry(str(tiny_videos.av_clip), 0)], ["a"])
    crop = v2.Compose([v2.RandomResizedCrop(16, scale=(0.2, 1.0)), v2.ColorJitter(0.4, 0.4)])

    def augment(frames):  # uint8 (T, H, W, C) -> float (C, T, H, W) with torch-random crop and jitter
        video = tv_tensors.Video(torch.as_tensor(frames).permute(0, 3, 1, 2).float() / 255)
        return crop(video).permute(1, 0, 2, 3).as_subclass(torch.Tensor)

    views = S.ViewSpec(S.RandomClipSampler(4, 2), {"clip": augment})
    data = VideoDataset(index, views, decoder=pyav, seed=0)
    torch.manual_seed(123)
    a, b = data[(0, 5)], data[(0, 5)]
    assert torch.equal(a["video"][0], b["video"][0]) and a["video"][0].shape == (3, 4, 16, 16)
    assert not torch.equal(a["video"][0], data[(0, 6)]["video"][0])
    assert torch.equal(data[0]["video"][0], data[(0, 0)]["video"][0])


def test_bad_files_are_skipped_logged_once_and_counted(tiny_videos, pyav, tmp_path, caplog):
    # (truncated.mp4 is left out: its first frames still decode, so it is not always skipped)
    bad = [tiny_videos.corrupt, tiny_videos.zero_byte, tiny_videos.text, tiny_videos.missing]
    entries = [VideoEntry(str(p), 0) for p in bad] + [VideoEntry(str(tiny_videos.silent), 1)]
    views = S.ViewSpec(S.RandomClipSampler(2, 1), {"clip": to_float_clip})
    log = tmp_path / "bad.tsv"
    data = VideoDataset(DatasetIndex(entries, ["a", "b"]), views, decoder=pyav, max_retries=50, bad_file_log=str(log))
    with caplog.at_level(logging.WARNING, logger="videossl.data"):
        for i in range(len(bad)):
            sample = data[(i, 0)]
            assert sample["index"] == len(entries) - 1 and sample["label"] == 1
        again = data[(0, 0)]
    assert again["index"] == sample["index"]  # the replacement is deterministic
    assert data.num_skipped >= len(bad)
    lines = log.read_text().splitlines()
    assert len(lines) == data.num_skipped and all("\t" in line for line in lines)
    assert {line.split("\t")[0] for line in lines} == {str(p) for p in bad}
    warned = [r.getMessage() for r in caplog.records if "skipping unreadable file" in r.getMessage()]
    assert len(warned) == len(bad)  # one warning per file, not per attempt


def test_all_bad_raises_clear_error(tiny_videos, pyav):
    entries = [VideoEntry(str(tiny_videos.corrupt), 0), VideoEntry(str(tiny_videos.missing), 0)]
    views = S.ViewSpec(S.RandomClipSampler(2, 1), {"clip": to_float_clip})
    data = VideoDataset(DatasetIndex(entries, ["a"]), views, decoder=pyav, max_retries=3)
    with pytest.raises(DatasetError, match="4 unreadable files in a row"):
        data[0]


def test_audio_views_and_missing_transform_key(tiny_videos, pyav):
    index = DatasetIndex([VideoEntry(str(tiny_videos.av_clip), 0)], ["a"])
    sampler = S.AudioVisualSampler(num_frames=4, stride=2, audio_seconds=0.5, hard_negative=True)
    views = S.ViewSpec(sampler, {"clip": to_float_clip, "audio": lambda w: w}, audio_rate=8000)
    sample = VideoDataset(index, views, decoder=pyav)[0]
    assert [a.shape for a in sample["audio"]] == [(1, 4000), (1, 4000)]
    assert sample["video"][0].shape == (3, 4, 32, 32) and "negative_gap_s" in sample
    no_audio_key = S.ViewSpec(sampler, {"clip": to_float_clip}, audio_rate=8000)
    with pytest.raises(DatasetError, match="transform 'audio'"):
        VideoDataset(index, no_audio_key, decoder=pyav)[0]


def test_images_and_audio_files(tmp_path, pyav):
    from PIL import Image

    Image.fromarray(np.full((20, 30, 3), 200, np.uint8)).save(tmp_path / "im.png")
    with wave.open(str(tmp_path / "tone.wav"), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(8000)
        out.writeframes((np.sin(np.arange(16000) / 5) * 10000).astype("<i2").tobytes())
    image = VideoDataset(DatasetIndex([VideoEntry(str(tmp_path / "im.png"), 0)], ["a"]),
                         S.ViewSpec(S.FrameSampler(2), {"clip": to_float_clip}), decoder=pyav)
    sample = image[0]
    assert [v.shape for v in sample["video"]] == [(3, 1, 20, 30)] * 2 and sample["video"][0].max() == 200
    speech = VideoDataset(DatasetIndex([VideoEntry(str(tmp_path / "tone.wav"), 0)], ["s"]),
                          S.ViewSpec(S.LongAudioSampler(1.0), {"audio": lambda w: w}, audio_rate=8000), decoder=pyav)
    audio = speech[0]["audio"][0]
    assert audio.shape == (1, 8000) and audio.abs().max() > 0.1


def test_manifest_round_trip_keeps_class_order(tmp_path):
    from videossl.data.datasets import write_manifest

    index = DatasetIndex([VideoEntry("/v/b, c.mp4", 1), VideoEntry("/v/a.mp4", 0, 1.5, 4.0)], ["Zebra", "apple"])
    path = write_manifest(index, tmp_path / "m" / "train.csv")
    back = read_dataset("csv", str(path))
    assert back == index
    assert read_dataset("csv", str(tmp_path / "m"), "train") == index
