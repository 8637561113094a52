"""Augmentations: ``video`` (torchvision.transforms.v2, one random draw per clip) and ``audio`` (torchaudio)."""
