"""Build a videossl manifest for LibriSpeech (``<root>/<split>/<speaker>/<chapter>/*.flac``, label = speaker).

    python datasets/librispeech/prepare.py --root data/LibriSpeech --splits train-clean-100,dev-clean --out manifests/librispeech

Audio-only: samplers such as ``LongAudioSampler`` (CPC) read waveforms at ``ViewSpec.audio_rate``.
Speaker ids are sorted numerically per split. Writes ``<out>/<split>.csv`` + ``classes.txt``.
"""
import argparse
import sys
from pathlib import Path

from videossl.data.datasets import read_dataset, write_manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="the LibriSpeech folder (holding train-clean-100/ ...)")
    parser.add_argument("--splits", default="train-clean-100", help="comma-separated split folders under root")
    parser.add_argument("--out", required=True, help="where the manifests go")
    args = parser.parse_args(argv)
    for split in args.splits.split(","):
        index = read_dataset("librispeech", args.root, split.strip())
        path = write_manifest(index, Path(args.out) / f"{split.strip()}.csv")
        print(f"{path}: {len(index.entries)} utterances, {len(index.class_names)} classes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
