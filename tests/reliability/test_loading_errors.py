"""Issue 20, item 6: every kind of wrong file given as a checkpoint (``train.resume=``) or as an encoder
(``load_encoder``, ``videossl eval knn FILE``) is one clear line (a ``UserError``; exit code 2 and no traceback from
the CLI) saying what the file is; the refusal of an unsafe pickle is whole (no mid-sentence cut) and names the
Python object it would call; a read-only eval out_dir is one line too.

Before the fix: an empty file crashed the loaders' own error formatter (IndexError), a text file gave KeyError: 101,
the refusal was cut at 160 characters mid-sentence, a missing encoder was a FileNotFoundError traceback, a plain
torch dict or an encoder.pt loaded as a checkpoint without complaint, a last.ckpt given as an encoder said only
"not an encoder file", and a read-only out_dir was an OSError traceback.
"""
import io
import os
import pickle
import zipfile

import pytest
import torch

from videossl.backbones import create_backbone, load_encoder, save_encoder
from videossl.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from videossl.errors import UserError

CLIP = {"num_frames": 2, "frame_stride": 1, "crop_size": 32}


class Payload:
    """Unpickling this creates ``marker``: proof that the file was executed."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A real encoder.pt and last.ckpt in a run folder, and one file of every wrong kind."""
    root = tmp_path_factory.mktemp("wrong_files")
    run = root / "run"
    run.mkdir()
    torch.manual_seed(0)
    backbone = create_backbone("tiny_r3d")
    save_encoder(run / "encoder.pt", backbone, "tiny_r3d", {}, clip=CLIP)
    save_checkpoint({"model": {"w": torch.ones(2)}, "optimizer": {"state": {}, "param_groups": []}, "step": 3,
                     "epoch": 0, "batch_in_epoch": 3, "rng": {"torch": torch.get_rng_state()}, "config": ""},
                    run / "last.ckpt")
    marker = root / "pwned"
    f = {"encoder": run / "encoder.pt", "checkpoint": run / "last.ckpt", "marker": marker,
         "missing": root / "missing.pt"}

    def put(name, data):
        f[name] = root / name
        f[name].write_bytes(data)

    put("empty.pt", b"")
    put("notes.txt", b"these are my notes\nnot weights\n")
    ckpt, enc = (run / "last.ckpt").read_bytes(), (run / "encoder.pt").read_bytes()
    put("half.ckpt", ckpt[: len(ckpt) // 2])
    put("half_encoder.pt", enc[: len(enc) // 2])
    put("image.png", b"\x89PNG\r\n\x1a\n" + bytes(200))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.txt", "hello")
    put("archive.zip", archive.getvalue())
    plain = io.BytesIO()
    torch.save({"weight": torch.zeros(2, 2), "bias": torch.zeros(2)}, plain)
    put("state_dict.pt", plain.getvalue())
    put("evil.pkl", pickle.dumps({"model": Payload(marker), "step": 1}))  # a raw pickle (protocol 5)
    evil = io.BytesIO()
    torch.save({"model": Payload(marker), "step": 1}, evil)  # a torch archive whose data.pkl calls open()
    put("evil_archive.pt", evil.getvalue())
    audio = root / "encoder_audio.pt"
    save_encoder(audio, create_backbone("tiny_audio_resnet"), "tiny_audio_resnet", {})
    f["audio_encoder"] = audio
    return f


# (file, key phrase for a checkpoint, key phrase for an encoder)
WRONG = [
    ("missing", "checkpoint not found", "encoder file not found"),
    ("empty.pt", "is empty (0 bytes), not a videossl checkpoint", "is empty (0 bytes), not a videossl encoder file"),
    ("half.ckpt", "is truncated or corrupt", "is truncated or corrupt"),
    ("half_encoder.pt", "is truncated or corrupt", "is truncated or corrupt"),
    ("notes.txt", "is a text file (it starts with 'these are my notes'), not a videossl checkpoint",
     "is a text file (it starts with 'these are my notes'), not a videossl encoder file"),
    ("image.png", "is a PNG image, not a videossl checkpoint", "is a PNG image, not a videossl encoder file"),
    ("archive.zip", "is a zip archive (1 file: a.txt) but not a torch file",
     "is a zip archive (1 file: a.txt) but not a torch file"),
    ("state_dict.pt", "state_dict.pt: not a videossl checkpoint (it is a torch file holding a bare state dict of 2 "
     "tensors", "state_dict.pt: not an encoder file written by videossl (it is a torch file holding a bare state "
     "dict of 2 tensors"),
    ("encoder", "this is a videossl encoder file, not a checkpoint; pass last.ckpt", None),
    ("checkpoint", None, "this is a videossl checkpoint, not an encoder file; pass encoder.pt"),
]


def one_line(message: str) -> str:
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.mark.parametrize("name,as_checkpoint,_", [w for w in WRONG if w[1]], ids=[w[0] for w in WRONG if w[1]])
def test_wrong_file_as_checkpoint_is_one_line(files, name, as_checkpoint, _):
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(files[name])
    assert as_checkpoint in one_line(str(caught.value))


@pytest.mark.parametrize("name,_,as_encoder", [w for w in WRONG if w[2]], ids=[w[0] for w in WRONG if w[2]])
def test_wrong_file_as_encoder_is_one_line(files, name, _, as_encoder):
    with pytest.raises(UserError) as caught:
        load_encoder(files[name])
    assert as_encoder in one_line(str(caught.value))


def test_the_right_files_still_load(files):
    assert load_checkpoint(files["checkpoint"])["step"] == 3
    assert load_encoder(files["encoder"]).num_features > 0


def test_the_other_kind_names_the_sibling_file(files):
    with pytest.raises(CheckpointError, match=r"pass last.ckpt \(here: .*run/last.ckpt\)"):
        load_checkpoint(files["encoder"])
    with pytest.raises(UserError, match=r"pass encoder.pt \(here: .*run/encoder.pt\)"):
        load_encoder(files["checkpoint"])


@pytest.mark.parametrize("loader,error,what", [(load_checkpoint, CheckpointError, "checkpoint"),
                                               (load_encoder, UserError, "encoder file")])
def test_unsafe_pickle_refusal_is_whole_and_names_the_global(files, loader, error, what):
    for name, reason in (("evil.pkl", "it is a Python pickle that would import and call io.open"),
                         ("evil_archive.pt", "it needs the Python object io.open")):
        with pytest.raises(error) as caught:
            loader(files[name])
        message = one_line(str(caught.value))
        assert message.startswith(f"refusing to load {files[name]}: it is not a plain-tensor {what} ({reason})")
        assert message.endswith("can run arbitrary code") or message.endswith("can run code"), message
        assert message.count("(") == message.count(")")  # not cut mid-sentence (the old [:160] slice)
    assert not files["marker"].exists()  # nothing was executed


@pytest.mark.parametrize("name,_,as_encoder", [w for w in WRONG if w[2]] + [
    ("audio_encoder", None, "is a audio backbone; these protocols evaluate video encoders")],
    ids=[w[0] for w in WRONG if w[2]] + ["audio_encoder"])
def test_eval_knn_with_a_wrong_encoder_exits_2(files, capsys, tmp_path, name, _, as_encoder, cli_in_process):
    code, _, err = cli_in_process(capsys, ["eval", "knn", str(files[name]), f"out_dir={tmp_path / 'eval'}", "progress=false"])
    phrase = "encoder: file not found" if name == "missing" else as_encoder
    assert code == 2 and phrase in err, err
    assert len([line for line in err.splitlines() if line.startswith("videossl: error:")]) == 1


@pytest.mark.parametrize("name", ["empty.pt", "half.ckpt", "notes.txt", "image.png", "archive.zip", "state_dict.pt",
                                  "encoder", "evil.pkl"])
def test_pretrain_resume_from_a_wrong_file_exits_2(files, capsys, tmp_path, tiny_pool, tiny_overrides, name, cli_in_process):
    phrase = {n: c for n, c, _ in WRONG if c}.get(name, "it is not a plain-tensor checkpoint")
    argv = ["pretrain", "simclr_synthetic_tiny3d", f"train.resume={files[name]}",
            *tiny_overrides(tiny_pool, tmp_path / "run", frames=2, steps=1), "train.plots=false"]
    code, _, err = cli_in_process(capsys, argv)
    assert code == 2 and phrase in err, err
    assert not files["marker"].exists()


def test_eval_into_a_read_only_out_dir_is_one_line(files, capsys, tmp_path, monkeypatch, cli_in_process):
    """A read-only out_dir (injected: the tests may run as root, for whom chmod changes nothing) is one line
    before any feature is computed."""
    import videossl.files

    out = tmp_path / "read_only"
    out.mkdir()
    real_access = os.access
    monkeypatch.setattr(videossl.files.os, "access",
                        lambda path, mode: False if str(path) == str(out) else real_access(path, mode))
    code, _, err = cli_in_process(capsys, ["eval", "knn", str(files["encoder"]), f"out_dir={out}", "progress=false"])
    assert code == 2 and f"cannot write to out_dir {out}" in err, err

