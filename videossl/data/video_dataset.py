"""The map-style ``VideoDataset``: one decode per sample, the views cut from it, unreadable files skipped.

``VideoDataset`` decodes one video per sample (the union of the frames every view needs, in ONE decoder
call), cuts the views, applies the per-view transforms, and skips unreadable or hanging files deterministically.
Its entries come from a ``DatasetIndex`` (``videossl.data.datasets.read_dataset``).
"""
from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any, Callable

import av
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import default_collate
from torchvision.transforms.v2.functional import resize

from videossl.data.bad_files import append_bad_file, private_log_path
from videossl.data.datasets import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS, DatasetError, DatasetIndex, logger
from videossl.data.decode import create_decoder, release_free_heap
from videossl.data.sampling import VideoMeta, ViewSpec
from videossl.data.timeout import CallTimeout, TimedCaller

TRIM_HEAP_EVERY = 1000  # samples per process between malloc_trim calls (decord's RSS creep: docs/reliability.md)


def collate_readable(samples: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """``default_collate`` of the samples that are not ``None`` (files a ``VideoDataset`` with
    ``replace_unreadable=False`` could not read); ``None`` when none is left. ``batch["index"]`` says which
    entries the batch holds."""
    readable = [sample for sample in samples if sample is not None]
    return default_collate(readable) if readable else None


class _ImageReader:
    """Still images as 1-frame videos (decoded with torchvision.io), same API as a decoder."""

    def probe(self, path: str) -> VideoMeta:
        with Image.open(path) as image:
            width, height = image.size
        return VideoMeta(num_frames=1, fps=1.0, duration=1.0, height=height, width=width, has_audio=False)

    def frames(self, path: str, indices, short_side: int | None = None):
        # Pillow, not torchvision.io: torchvision's libpng fails ("Internal error") once decord's libraries are loaded
        with Image.open(path) as img:
            image = torch.from_numpy(np.asarray(img.convert("RGB")).copy()).permute(2, 0, 1)  # (3, H, W) uint8
        if short_side:
            image = resize(image, [short_side], antialias=True)
        return image.permute(1, 2, 0).unsqueeze(0).expand(len(indices), -1, -1, -1).contiguous() \
            if len(indices) else torch.zeros(0, *image.shape[1:], 3, dtype=torch.uint8)


class _AudioFileReader:
    """Audio-only files (LibriSpeech ``.flac``, ``.wav``): duration from the PyAV header; audio via the decoder."""

    def __init__(self, decoder: Any):
        self.decoder = decoder

    def probe(self, path: str) -> VideoMeta:
        with av.open(path) as container:
            if not container.streams.audio:
                raise ValueError("no audio stream")
            stream = container.streams.audio[0]
            if stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            else:
                duration = (container.duration or 0) / 1_000_000
        return VideoMeta(num_frames=1, fps=1.0, duration=duration, height=0, width=0, has_audio=True)

    def audio(self, path: str, start: float, end: float, sample_rate: int):
        return self.decoder.audio(path, start, end, sample_rate)


class _BadFile(Exception):
    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def _generic_reason(bad: _BadFile) -> str:
    """The reason without the file's own name, so the same error on two files compares equal."""
    name = Path(bad.path).name
    return bad.reason.replace(bad.path, "FILE").replace(name, "FILE") if name else bad.reason


class VideoDataset:
    """Map-style dataset: ``dataset[i]`` or ``dataset[(i, epoch)]`` -> one sample dict.

    ``{"video": [(C, T, H, W) per video view, in view order], "audio": [(1, samples) or (1, n_mels, frames)]
    (only when the sampler asks for audio), "label": int, "index": int (the entry actually loaded),
    **sampler targets}``.

    Every random draw (views and transforms) comes from ``np.random.default_rng([seed, epoch, index,
    attempt])``; torch's RNG (used by torchvision.transforms.v2) is seeded from it inside a forked RNG
    scope, so a key gives the same sample in any worker, after any resume. A file that fails to probe or
    decode is skipped: attempt ``k`` loads another index drawn from that attempt's rng, ``num_skipped``
    counts it, one warning per file goes to the ``videossl.data`` logger and ``path<TAB>reason`` to
    ``bad_file_log`` (default: a private temp file; ``videossl.data.bad_files.report_bad_files`` turns it into the
    run's ``bad_files.csv``, from every DataLoader worker). A probe + decode that takes longer than
    ``decode_timeout_s`` (0: no limit) counts as a broken file too (``videossl.data.timeout``). After
    ``max_retries`` consecutive failures a ``DatasetError`` says so, and says when they all failed alike (a
    setting, not the files). With ``replace_unreadable=False`` (evaluation, which must not count one video twice
    nor lose track of which were read) an unreadable file is recorded the same way and its sample is ``None``
    (``collate_readable`` leaves it out of the batch).
    ``decode_calls`` counts video decodes (one per sample: the union of all views' frames).
    """

    def __init__(self, index: DatasetIndex, views: ViewSpec, decoder: str | Any = "decord", seed: int = 0,
                 short_side: int | None = None, max_retries: int = 10, bad_file_log: str | None = None,
                 decode_timeout_s: float = 60.0, replace_unreadable: bool = True):
        if short_side is not None and (isinstance(short_side, bool) or not isinstance(short_side, numbers.Real)
                                       or not short_side >= 1):
            raise DatasetError(f"short_side (the decoder's resize) must be a positive number of pixels or None, "
                               f"got {short_side!r}")
        bad_file_log = bad_file_log or private_log_path()
        self.index, self.views, self.seed = index, views, seed
        self._bounded = TimedCaller(decode_timeout_s)
        self.short_side, self.max_retries, self.bad_file_log = short_side, max_retries, bad_file_log
        self.replace_unreadable = replace_unreadable
        self._decoder_spec = decoder
        self._decoder = None if isinstance(decoder, str) else decoder
        if isinstance(decoder, str):  # fail now, in the main process, on a bad decoder name
            self._decoder = create_decoder(decoder)
        self._meta: dict[str, VideoMeta] = {}
        self._warned: set[str] = set()
        self.decode_calls = 0
        self.num_skipped = 0

    def __len__(self) -> int:
        return len(self.index.entries)

    @property
    def class_names(self) -> list[str]:
        return self.index.class_names

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any] | None:
        index, epoch = (int(key[0]), int(key[1])) if isinstance(key, tuple) else (int(key), 0)
        self._reads = getattr(self, "_reads", 0) + 1
        if self._reads % TRIM_HEAP_EVERY == 0:  # decoders' freed frame buffers stay mapped otherwise (docs/reliability.md)
            release_free_heap()
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} entries")
        failures: list[_BadFile] = []
        for attempt in range(self.max_retries + 1):
            rng = np.random.default_rng([self.seed, epoch, index, attempt])
            current = index if attempt == 0 else int(rng.integers(len(self)))
            try:
                clips, waves, targets = self._bounded_decode(current, rng)
            except _BadFile as bad:
                self._record_bad(bad)
                if not self.replace_unreadable:
                    return None
                failures.append(bad)
                continue
            return self._finish(current, clips, waves, targets, rng)
        raise DatasetError(self._too_many_failures(index, failures))

    def _too_many_failures(self, index: int, failures: list["_BadFile"]) -> str:
        """The message when every attempt failed: the same error on several different files points at a setting."""
        last = failures[-1]
        reasons = {_generic_reason(f) for f in failures}
        if len(reasons) == 1 and len({f.path for f in failures}) > 1:
            return (f"{len(failures)} files in a row failed with the same error ({_generic_reason(last)}; last: "
                    f"{last.path}): when different files all fail alike the cause is usually a setting (e.g. "
                    f"data.decoder, data.short_side, data.crop_size, data.decode_timeout_s), not the files; "
                    f"`videossl data check {last.path}` tests one file on its own")
        return (f"{len(failures)} unreadable files in a row while loading index {index} (last: {last}); the data "
                f"looks broken: `videossl data check <dataset folder>` lists every bad file")

    # -- decoding -----------------------------------------------------------------------------------

    def _reader(self, path: str) -> Any:
        suffix = Path(path).suffix.lower()
        if suffix in IMAGE_EXTENSIONS:
            return _ImageReader()
        if suffix in AUDIO_EXTENSIONS:
            return _AudioFileReader(self._decoder)
        return self._decoder

    def _bounded_decode(self, current: int, rng: np.random.Generator):
        try:
            return self._bounded(self._decode_views, current, rng)
        except CallTimeout as err:
            raise _BadFile(self.index.entries[current].path, f"probe/decode {err} (data.decode_timeout_s)") from None

    def _decode_views(self, current: int, rng: np.random.Generator):
        entry = self.index.entries[current]
        reader = self._reader(entry.path)
        try:
            meta = self._meta.get(entry.path)
            if meta is None:
                meta = reader.probe(entry.path)
                if len(self._meta) > 100_000:
                    self._meta.clear()
                self._meta[entry.path] = meta
            sampled = self.views.sampler(meta._replace(start=entry.start, end=entry.end), rng)
            video_views = [v for v in sampled.views if v.modality == "video"]
            clips = []
            if video_views:
                union = sorted({i for v in video_views for i in v.frame_indices})
                frames = reader.frames(entry.path, union, short_side=self.short_side)  # (U, H, W, C) uint8
                self.decode_calls += 1
                if len(frames) != len(union):
                    raise ValueError(f"decoder returned {len(frames)} frames for {len(union)} indices")
                where = {f: k for k, f in enumerate(union)}
                clips = [(v, frames[[where[i] for i in v.frame_indices]]) for v in video_views]
            waves = [(v, self._audio(reader, entry.path, v.time_range)) for v in sampled.views if v.modality == "audio"]
        except Exception as err:  # DecodeError, or anything a backend raises on a broken file
            reason = str(err).removeprefix(f"{entry.path}: ").splitlines()[0] if str(err) else type(err).__name__
            raise _BadFile(entry.path, reason) from None
        return clips, waves, sampled.targets

    def _audio(self, reader: Any, path: str, time_range: tuple[float, float]):
        if self.views.audio_rate is None:
            raise DatasetError("the sampler asks for audio views but ViewSpec.audio_rate is None")
        start, end = time_range
        wave = reader.audio(path, start, end, self.views.audio_rate)
        length = round((end - start) * self.views.audio_rate)  # a fixed length so batches collate
        return F.pad(wave, (0, max(length - wave.shape[-1], 0)))[..., :length]

    def _transform(self, view: Any) -> Callable:
        try:
            return self.views.transforms[view.transform]
        except KeyError:
            raise DatasetError(f"view {view.name!r} asks for transform {view.transform!r}; ViewSpec.transforms has "
                               f"{sorted(self.views.transforms)}") from None

    def _finish(self, current: int, clips: list, waves: list, targets: dict, rng: np.random.Generator):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**63 - 1)))
            sample: dict[str, Any] = {"video": [self._transform(v)(frames) for v, frames in clips]}
            if waves:
                sample["audio"] = [self._transform(v)(wave) for v, wave in waves]
        entry = self.index.entries[current]
        sample.update(label=entry.label, index=current, **targets)
        return sample

    def _record_bad(self, bad: _BadFile) -> None:
        self.num_skipped += 1
        if bad.path not in self._warned:
            self._warned.add(bad.path)
            logger.warning("skipping unreadable file %s: %s", bad.path, bad.reason)
        if self.bad_file_log:
            append_bad_file(self.bad_file_log, bad.path, bad.reason)
