#!/usr/bin/env bash
# The GPU rows of benchmarks/scaling.py on one GPU, as one table, in at most 9 minutes:
# lm-paper's full-batch training step (tokens per second, float32 and bf16 autocast), its
# adjoint step over its training step, the peak GPU memory of a hypergradient at T = 50, the
# whole lm-gpu run (stopped after the epoch that passes 5 minutes, if it is slower than the
# estimate in docs/scaling.md) with its test acceleration ratio, and a compiled training step
# against the eager one. Rows are printed as they finish; a hard limit ends the script at 9
# minutes whatever happens.
#
#   bash benchmarks/gpu_check.sh            # from the repository, with learnlaw importable
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}src"
PYTHON="${PYTHON:-python}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
timeout --signal=INT --kill-after=10 540 \
    "$PYTHON" benchmarks/scaling.py --gpu-only --repeats 3 --budget-minutes 5 --deadline-minutes 8.5 "$@"
