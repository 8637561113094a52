"""videossl: self-supervised learning on video, audio and images.

Shape rule: a clip is ``(C, T, H, W)``, a batch ``(B, C, T, H, W)``; an image is a clip with ``T=1``.
Audio is ``(1, samples)`` raw or ``(1, n_mels, frames)`` log-mel. Losses only see ``(B, D)`` or ``(B, N, D)``.
"""

__version__ = "0.1.0"
