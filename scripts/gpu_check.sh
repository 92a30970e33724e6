#!/usr/bin/env bash
# Where a GPU is at hand: VAE, DCGAN and GPT-2, 300 training batches each at 32-true, 16-mixed and
# bf16-mixed (9 runs, a few minutes on one GPU, stopped at 8), then one table of seconds per
# epoch, throughput and peak GPU memory per setting. Paste the table into docs/benchmarks.md.
#
#   scripts/gpu_check.sh            # the check (needs a CUDA GPU)
#   scripts/gpu_check.sh --dry-run  # print the nine genlab-train jobs, run nothing
#   scripts/gpu_check.sh --cpu      # a two-batch smoke test of the script on the CPU (32-true)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3

case "${1:-}" in
  --dry-run) exec "$PYTHON" scripts/gpu_check.py --limit-batches 300 --dry-run ;;
  --cpu) exec "$PYTHON" scripts/gpu_check.py --accelerator cpu --precisions 32-true --limit-batches 2 ;;
  "") exec timeout 480 "$PYTHON" scripts/gpu_check.py --limit-batches 300 ;;
  *) echo "usage: $0 [--dry-run | --cpu]" >&2; exit 2 ;;
esac
