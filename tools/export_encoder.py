#!/usr/bin/env python
"""Export a trained ``encoder.pt`` to torchvision / pytorchvideo / transformers format.

    python tools/export_encoder.py runs/x/encoder.pt --to torchvision r3d_18_ssl.pth
    python tools/export_encoder.py runs/y/encoder.pt --to transformers videomae_ssl/   # a directory

The result loads in plain library code (see ``videossl/backbones/export.py``) and back into videossl with
``backbone.pretrained=<file or dir>``.
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("encoder", help="encoder.pt written by videossl pretrain")
    parser.add_argument("--to", required=True, choices=["torchvision", "pytorchvideo", "transformers"])
    parser.add_argument("out", help="output file (torchvision, pytorchvideo) or directory (transformers)")
    args = parser.parse_args(argv)

    import torch

    from videossl.backbones.export import export_encoder
    from videossl.errors import UserError

    torch.set_num_threads(1)
    try:
        out = export_encoder(args.encoder, args.to, args.out)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
