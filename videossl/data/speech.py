"""A small multi-speaker speech set synthesised with espeak-ng, for a real-speech CPC test that runs offline.

Speakers are espeak-ng voices (accents: American, British, Scottish, RP, ...) combined with voice variants
(``!v/...``: different pitch, formants and timbre), each with its own base pitch and speed; every utterance is a
different random sentence from a fixed vocabulary, so speaker identity is the only thing the label depends on.
Layout (the ``audio`` / ``folder`` format of ``read_dataset``, label = speaker)::

    <root>/<speaker>/<speaker>_<k>.wav      22.05 kHz mono 16-bit PCM, espeak-ng's native rate
    <root>/speakers.json                    parameters and the speaker list (written last: the set is complete)

Needs the ``espeak-ng`` program (Debian/Ubuntu: ``apt-get install -y espeak-ng``); a clear ``UserError`` says so
when it is missing.  ``videossl data speech ROOT`` builds it from the command line.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
from tqdm import tqdm

from videossl.errors import UserError

VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "whisper",
            "croak")
WORDS = ("the a one two three red blue green small large old new quick slow happy quiet river mountain city "
         "garden window morning evening music paper table water light stone bird horse train letter story "
         "friend doctor teacher farmer walks runs sings reads writes opens closes finds brings sees hears "
         "under over near behind across through before after today tomorrow always never often again").split()


def espeak_binary() -> str:
    """Path of ``espeak-ng``; ``UserError`` naming the apt package when it is not installed."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise UserError("espeak-ng is not installed (Debian/Ubuntu: apt-get install -y espeak-ng); "
                        "it synthesises the speaker set")
    return path


def speakers(num_speakers: int, seed: int = 0) -> list[dict]:
    """``num_speakers`` distinct (voice, variant, pitch, speed) speakers, a seeded draw without repetition."""
    pairs = [(v, w) for v in VOICES for w in VARIANTS]
    if not 2 <= num_speakers <= len(pairs):
        raise UserError(f"num_speakers must be in [2, {len(pairs)}], got {num_speakers}")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(pairs), size=num_speakers, replace=False)
    out = []
    for k, i in enumerate(chosen):
        voice, variant = pairs[int(i)]
        out.append({"name": f"spk{k:02d}_{voice}_{variant}", "voice": f"{voice}+{variant}",
                    "pitch": int(rng.integers(25, 75)), "speed": int(rng.integers(140, 190))})
    return out


def random_sentence(rng: np.random.Generator, min_words: int = 6, max_words: int = 12) -> str:
    return " ".join(rng.choice(WORDS, size=int(rng.integers(min_words, max_words + 1))))


def make_speaker_set(root: str | Path, num_speakers: int = 8, utterances: int = 10, seed: int = 0,
                     progress: bool = False) -> Path:
    """Write the set under ``root`` (reused when ``speakers.json`` matches the parameters). Returns ``root``."""
    binary = espeak_binary()
    root = Path(root)
    params = {"num_speakers": num_speakers, "utterances": utterances, "seed": seed, "version": 1}
    info = root / "speakers.json"
    if info.is_file() and json.loads(info.read_text()).get("params") == params:
        return root
    if utterances < 1:
        raise UserError(f"utterances must be >= 1, got {utterances}")
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 1])
    table = speakers(num_speakers, seed)
    jobs = [(s, k) for s in table for k in range(utterances)]
    if progress:
        jobs = tqdm(jobs, desc="espeak-ng utterances")
    for spk, k in jobs:
        folder = root / spk["name"]
        folder.mkdir(exist_ok=True)
        path = folder / f"{spk['name']}_{k:03d}.wav"
        # Small per-utterance jitter of speed and pitch around the speaker's own (people vary too).
        speed = spk["speed"] + int(rng.integers(-10, 11))
        pitch = int(np.clip(spk["pitch"] + rng.integers(-5, 6), 0, 99))
        command = [binary, "-v", spk["voice"], "-s", str(speed), "-p", str(pitch), "-w", str(path),
                   random_sentence(rng)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if result.returncode != 0 or not path.is_file():
            raise UserError(f"espeak-ng failed for voice {spk['voice']}: {result.stderr.strip().splitlines()[-1:] or '?'}")
    info.write_text(json.dumps({"params": params, "speakers": table}, indent=2))
    return root


def add_arguments(parser) -> None:
    parser.add_argument("root", help="output folder (<root>/<speaker>/*.wav)")
    parser.add_argument("--speakers", type=int, default=8, help="number of speakers (default 8)")
    parser.add_argument("--utterances", type=int, default=10, help="utterances per speaker (default 10)")
    parser.add_argument("--seed", type=int, default=0)


def run(args) -> int:
    root = make_speaker_set(args.root, args.speakers, args.utterances, args.seed, progress=True)
    print(f"wrote {args.speakers} x {args.utterances} utterances under {root} (format=audio, label = speaker)")
    return 0
