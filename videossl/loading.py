"""Reading the torch files a user hands to videossl (``train.resume=``, an encoder for ``videossl eval``), with one
clear line for every kind of wrong file.

``read_torch_file`` looks at the file before torch does: missing, a folder, empty, text, another format (an image,
a video, an archive, a safetensors or NumPy file), a plain Python pickle (refused without being run, naming the
Python objects it would call), a torch archive cut short. Only then does it call ``torch.load(...,
weights_only=True)``, whose own failures (an unsupported global: a pickle that would run code; a corrupt archive)
are turned into one whole sentence. ``file_kind`` tells a videossl checkpoint from a videossl encoder file (by
their ``format`` field, or by their keys for files written before it existed) and ``describe_payload`` says in a
few words what some other torch file holds.

Every failure is a ``UserError`` (or the subclass the caller passes): one line, exit code 2 from the CLI.
"""
from __future__ import annotations

import pickle
import pickletools
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from .errors import UserError

# what ``payload["format"]`` starts with in files written by save_checkpoint / save_encoder
CHECKPOINT_FORMAT_PREFIX = "videossl-checkpoint"
ENCODER_FORMAT_PREFIX = "videossl-encoder"
# keys that identify the two kinds in files written before the ``format`` field
CHECKPOINT_KEYS = frozenset({"model", "optimizer", "step"})
ENCODER_KEYS = frozenset({"backbone", "kwargs", "state_dict"})

# torch.save's legacy (pre-1.6, non-zip) format starts with this pickled magic number
_LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-zip archive"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (h5py / Keras)"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"\x7fELF", "an executable program"),
    (b"\x1aE\xdf\xa3", "a WebM / Matroska video"),
    (b"RIFF", "a RIFF file (AVI video or WAV audio)"),
    (b"fLaC", "a FLAC audio file"),
    (b"OggS", "an Ogg media file"),
    (b"ID3", "an MP3 audio file"),
)
_HEAD = 4096  # bytes looked at to recognise a format or text


def read_torch_file(path: str | Path, what: str, *, error: type[UserError] = UserError,
                    map_location: Any = "cpu", mmap: bool = False, verify: bool = True) -> Any:
    """``torch.load(path, weights_only=True)``, or ``error`` with one line saying what is wrong with the file.

    ``what`` names the expected kind in messages ("checkpoint", "encoder file"). ``verify``: check the CRC of every
    member of a torch archive first (torch does not; it reads the whole file once more)."""
    path = Path(path)
    if not path.exists():
        raise error(f"{what} not found: {path}")
    if path.is_dir():
        raise error(f"{path} is a folder, not a videossl {what}")
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD)
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror or e}") from None
    if not head:
        raise error(f"{path} is empty (0 bytes), not a videossl {what}")
    problem = _sniff(path, head, what, verify)
    if problem:
        raise error(problem)
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        if "weights only load failed" not in str(e).lower():  # plain pickle errors: the data itself is damaged
            raise error(f"cannot read {what} {path}: it is truncated or corrupt ({_first_sentence(e)})") from None
        raise error(f"refusing to load {path}: it is not a plain-tensor {what} ({_unpickling_reason(e)}); "
                    f"videossl loads only tensors and builtins, because unpickling other objects can run code") from None
    except Exception as e:  # the file is the user's input: whatever torch trips over in it is "corrupt"
        raise error(f"cannot read {what} {path}: it is truncated or corrupt ({_first_sentence(e)})") from None


def _sniff(path: Path, head: bytes, what: str, verify: bool = True) -> str | None:
    """Why ``path`` cannot be a torch file (``"P is a PNG image, not a videossl checkpoint"``), or None to try it."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        problem = _check_zip(path, head, what, verify)
        return f"{path} {problem}" if problem else None
    if head.startswith(_LEGACY_TORCH_MAGIC):
        return None  # torch.save(..., _use_new_zipfile_serialization=False)
    if head[4:8] == b"ftyp":
        return f"{path} is an MP4 / MOV video, not a videossl {what}"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return f"{path} is {name}, not a videossl {what}"
    if _is_safetensors(head, path):
        return f"{path} is a safetensors file, not a videossl {what}"
    pickled = _pickle_verdict(path, what)
    if pickled is not None:
        return pickled or None  # "": torch's legacy format
    text = _text_start(head)
    if text is not None:
        return f"{path} is a text file (it starts with {text!r}), not a videossl {what}"
    # torch.load reads only zip archives and the legacy format (a pickled magic number first): nothing else is
    return f"{path} is not a torch file (an unknown binary format), so not a videossl {what}"


def _check_zip(path: Path, head: bytes, what: str, verify: bool) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        # the central directory sits at the end: a torch archive cut short (interrupted copy, full disk) lands here
        if _first_zip_member(head).endswith("data.pkl"):
            return (f"is truncated or corrupt: a torch archive without its end (an interrupted write, copy or "
                    f"download?), not a readable {what}")
        return f"is a damaged zip archive, not a videossl {what}"
    if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
        if verify:
            try:
                with zipfile.ZipFile(path) as archive:
                    damaged = archive.testzip()  # CRC of every member: torch itself never checks them
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
                damaged = str(e) or type(e).__name__
            if damaged is not None:
                return (f"is corrupt: a torch archive whose data fails its checksum ({damaged}), not a readable "
                        f"{what}")
        return None
    if names and all(n.endswith(".npy") for n in names):
        return f"is a NumPy .npz archive, not a videossl {what}"
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return (f"is a zip archive ({_count(len(names), 'file')}: {shown or 'empty'}) but not a torch file, so not a "
            f"videossl {what}")


def _first_zip_member(head: bytes) -> str:
    if len(head) < 30 or not head.startswith(b"PK\x03\x04"):
        return ""
    length = int.from_bytes(head[26:28], "little")
    return head[30:30 + length].decode("utf-8", "replace")


def _is_safetensors(head: bytes, path: Path) -> bool:
    if len(head) < 10:
        return False
    size = int.from_bytes(head[:8], "little")
    try:
        return 0 < size <= path.stat().st_size - 8 and head[8:9] == b"{" and head[9:10] in (b'"', b"}")
    except OSError:
        return False


def _pickle_verdict(path: Path, what: str) -> str | None:
    """The one-line verdict when ``path`` is a plain Python pickle (not torch's format), ``""`` for torch's legacy
    format, else None.

    The opcodes are only parsed (``pickletools.genops``), never executed: the Python objects the pickle would
    import and call are named, so a malicious file is refused before torch or pickle ever run it."""
    is_binary_pickle = False
    try:
        with open(path, "rb") as f:
            first = f.read(2)
            is_binary_pickle = len(first) == 2 and first[0] == 0x80 and 2 <= first[1] <= 5
            if not is_binary_pickle and first[:1] not in (b"(", b"}", b"]", b"c", b"I", b"S", b"V", b"N", b"F", b"L"):
                return None  # protocols 0 and 1 start with one of these opcodes
            f.seek(0)
            found: list[str] = []
            strings: list[str] = []
            for opcode, arg, _ in pickletools.genops(f):
                if opcode.name == "LONG1" and arg == _LEGACY_MAGIC_NUMBER and not strings and not found:
                    return ""  # torch's legacy format written with another pickle protocol: torch.load reads it
                if opcode.name == "GLOBAL" and isinstance(arg, str):
                    found.append(arg.replace(" ", "."))
                elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
                elif isinstance(arg, str):
                    strings.append(arg)
                if opcode.name == "STOP":
                    break
    except (ValueError, EOFError, OSError, IndexError, UnicodeDecodeError, pickle.UnpicklingError) as e:
        if isinstance(e, ValueError) and "exhausted" in str(e) and is_binary_pickle:
            return f"{path} is a truncated Python pickle, not a videossl {what}"
        return None  # not a pickle: text or another binary format
    unique = list(dict.fromkeys(found))
    if unique:
        named = ", ".join(unique[:3]) + (f" and {len(unique) - 3} more" if len(unique) > 3 else "")
        return (f"refusing to load {path}: it is not a plain-tensor {what} (it is a Python pickle that would import "
                f"and call {named}); videossl never unpickles such files, because that can run arbitrary code")
    return f"{path} is a plain Python pickle (not torch's format), not a videossl {what}"


def _text_start(head: bytes) -> str | None:
    if b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:  # not just a character cut at the end of the sample
            return None
        text = head[:e.start].decode("utf-8")
    if sum(ch.isprintable() or ch in "\r\n\t" for ch in text) < 0.95 * max(len(text), 1):
        return None
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= 40 else first[:40] + "..."


def _unpickling_reason(error: BaseException) -> str:
    """The reason inside torch's weights_only refusal, whole and on one line (e.g. the unsupported global)."""
    message = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", message)
    if found:
        return f"it needs the Python object {found.group(1)}"
    detail = message.split("WeightsUnpickler error:", 1)[-1] if "WeightsUnpickler error:" in message else ""
    detail = detail.split("Check the documentation", 1)[0]
    detail = " ".join(detail.split()).rstrip(".")
    if detail.startswith("Unsupported operand"):
        return f"it holds pickle data torch's safe loader cannot read ({detail})"
    return detail or "it holds Python objects, not only tensors"


def _first_sentence(error: BaseException) -> str:
    """The first sentence of an error message on one line, whole (torch's messages run on for several lines)."""
    message = " ".join(str(error).split())
    if not message:
        return type(error).__name__
    found = re.match(r"(.+?[.:;!?])(\s|$)", message)
    sentence = (found.group(1) if found else message).rstrip(".:;")
    return f"{type(error).__name__}: {sentence}" if len(sentence) < 12 else sentence


def file_kind(payload: Any) -> str | None:
    """``"checkpoint"`` or ``"encoder"`` for a videossl file's loaded payload, else None."""
    if not isinstance(payload, dict):
        return None
    fmt = payload.get("format")
    if isinstance(fmt, str):
        if fmt.startswith(CHECKPOINT_FORMAT_PREFIX):
            return "checkpoint"
        if fmt.startswith(ENCODER_FORMAT_PREFIX):
            return "encoder"
    keys = set(payload)
    if CHECKPOINT_KEYS <= keys:
        return "checkpoint"
    if ENCODER_KEYS <= keys:
        return "encoder"
    return None


def describe_payload(payload: Any) -> str:
    """A few words about what a torch file holds: ``"a dict of 2 tensors (keys 'weight', 'bias')"``."""
    if isinstance(payload, torch.Tensor):
        return f"a single tensor of shape {tuple(payload.shape)}"
    if isinstance(payload, dict):
        if not payload:
            return "an empty dict"
        keys = [repr(k) for k in list(payload)[:3]] + (["..."] if len(payload) > 3 else [])
        if all(isinstance(v, torch.Tensor) for v in payload.values()):
            return f"a bare state dict of {_count(len(payload), 'tensor')} (keys {', '.join(keys)}), without a backbone name"
        return f"a dict with keys {', '.join(keys)}"
    if isinstance(payload, (list, tuple)):
        return f"a {type(payload).__name__} of {len(payload)} items"
    return f"a {type(payload).__name__}"


def sibling_hint(path: Path, name: str) -> str:
    """``" (here: RUN/name)"`` when the run directory of ``path`` holds ``name``, else ``""``."""
    candidate = path.parent / name
    return f" (here: {candidate})" if candidate.is_file() and candidate != path else ""


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
