#!/usr/bin/env bash
# MRPC with MiniLM on a CPU: pretrained vs from-scratch runs, then each run's 1D loss curve
# J(θ0 + α(θ1 − θ0)), α ∈ [-0.5, 1.5], on 256 train examples and the whole dev set.
set -euo pipefail
OUT=${OUT:-outputs/demo}
make demo landscape-demo DEMO="$OUT"
echo "runs: $OUT/0_mrpc_pretrained $OUT/1_mrpc_scratch; curves: $OUT/surfaces/*_difference_line.h5"
