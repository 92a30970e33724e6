#!/usr/bin/env bash
# On one CUDA GPU, side by side in one go: GPT-2 124M (bf16-mixed, compile off and on), the VAE and
# the DCGAN under genlab-train against plain PyTorch loops of the same models; one table of
# tokens/s, MFU, seconds per epoch, peak memory and the genlab/plain ratios, for
# docs/benchmarks.md. First, the suite's tests of images held on the device, which run on the GPU
# where there is one (the same batches as host memory). About 8 minutes; stopped at 9.
#
#   scripts/bench_gpu.sh            # the benchmark (needs a CUDA GPU)
#   scripts/bench_gpu.sh --dry-run  # every row at toy sizes on the CPU: checks the script
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
export PYTHONWARNINGS=ignore

case "${1:-}" in
  --dry-run) exec "$PYTHON" scripts/bench_gpu.py --dry-run ;;
  "")
    "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_image_data.py -k held_on_the_device
    exec timeout 540 "$PYTHON" scripts/bench_gpu.py ;;
  *) echo "usage: $0 [--dry-run]" >&2; exit 2 ;;
esac
