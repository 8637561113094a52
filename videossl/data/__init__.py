"""Data: decoders, clip samplers, dataset readers, the synthetic dataset and the loaders."""

# The audio-visual readers (kinetics_sounds, audioset, esc50) add themselves to datasets.READERS on import; importing
# them here, with the package, registers them for every ``read_dataset`` caller without datasets.py importing them back.
from . import av_datasets  # noqa: E402,F401
