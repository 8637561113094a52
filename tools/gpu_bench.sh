#!/usr/bin/env bash
# The GPU numbers in docs/benchmarks.md ("On an H100"): run on the lent GPU machine from the repo root, with the
# pinned packages the image lacks carried as wheels in .whl/ (see the device notes). Each part keeps going when
# an earlier one fails; the whole log goes to ${OUT:-runs/gpu}/gpu_bench.log.
set -uo pipefail
out=${OUT:-runs/gpu}; mkdir -p "$out"; log="$out/gpu_bench.log"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD || exit 1
fi
export PYTHONUNBUFFERED=1
vs() { python3 -c "import sys; from videossl.cli import main; sys.exit(main())" "$@"; }
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
  svt="--set method.window_frames=256 --set method.local_frames=[2,2,4,4,8,8,16,16] --set method.local_size=96"
  echo "== SVT ViT-B/16 (TimeSformer), the paper's views: 2 globals 224 px (4, 8 frames) + 8 locals 96 px"
  vs bench train --methods svt --backbones timesformer_b16 --batch 8 --frames 8 --crop 224 --steps 3 --repeats 5 \
     --peers none --precision bf16-mixed $svt
  vs bench train --methods svt --backbones timesformer_b16 --batch 8 --frames 8 --crop 224 --steps 3 --repeats 5 \
     --peers none --precision bf16-mixed --compile $svt
  vs bench train --methods svt --backbones timesformer_b16 --batch 8 --frames 8 --crop 224 --steps 2 --repeats 3 \
     --peers none --precision 32-true $svt
  vs bench train --methods svt --backbones timesformer_b16 --batch 32 --frames 8 --crop 224 --steps 3 --repeats 5 \
     --peers none --precision bf16-mixed $svt
  vs bench train --methods svt --backbones timesformer_b16 --batch 32 --frames 8 --crop 224 --steps 3 --repeats 5 \
     --peers none --precision bf16-mixed --compile $svt
  echo "== 3D CNN, SimCLR/BYOL on R(2+1)D-18 against pytorchvideo and lightly: eager, channels_last_3d, compiled"
  c3d="--methods simclr byol --backbones r2plus1d_18 --batch 16 --frames 16 --crop 112 --steps 3 --repeats 5"
  vs bench train $c3d --precision bf16-mixed
  vs bench train $c3d --precision bf16-mixed --channels-last --peers none
  vs bench train $c3d --precision bf16-mixed --channels-last --compile --peers none
  echo "== VideoMAE ViT-B/16 MAE step (90% masking)"
  vs bench train --methods mae --backbones videomae_vit_b16 --batch 16 --frames 16 --crop 224 --steps 3 --repeats 5 \
     --peers none --precision bf16-mixed
  vs bench train --methods mae --backbones videomae_vit_b16 --batch 64 --frames 16 --crop 224 --steps 3 --repeats 5 \
     --peers none --precision bf16-mixed
} 2>&1 | tee "$log"
